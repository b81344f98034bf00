-- GET /rpc/feed?keyword=...&tlds={com}&min_price=20&max_price=2000 by anon: a keyword
-- (one of ten common name fragments), one TLD and a price range, default sort. Plan:
-- the trigram index finds the keyword's names, the rest filters, a top-N sort keeps 50.
\set n random(0, 9)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/rpc/feed', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "feed".* FROM "api"."feed"(
    "keyword" := (ARRAY['cloud', 'data', 'shop', 'home', 'tech', 'king', 'star', 'green', 'best', 'smart'])[1 + :n],
    "tlds" := '{com}', "min_price" := 20, "max_price" := 2000) AS "feed"
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
