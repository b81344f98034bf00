-- GET /rpc/similar_domains?domain=...&k=10 by anon: ten names on the market spelled like
-- a random one of the dictionary's words (+ .com). Plan: an HNSW scan of
-- market_names_vec, then one index lookup per label into the feed.
\set n random(1, 60000)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/rpc/similar_domains', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "similar_domains".* FROM "api"."similar_domains"(
    "domain" := 'bench' || (:n % 997) || 'x' || (ARRAY['cloud', 'data', 'shop', 'home', 'tech', 'king', 'star',
                                                      'green', 'best', 'smart'])[1 + :n % 10] || '.com',
    "k" := 10) AS "similar_domains"
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
