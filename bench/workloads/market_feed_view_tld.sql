-- GET /market_feed?tld=eq.io&price_usd=lte.500&order=pounce_score.desc,id.desc&limit=50
-- by anon: PostgREST-style filtering on the view itself (PostgREST 12's query shape).
-- Plan: a Merge Append of the per-table (tld, score, id) indexes.
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/market_feed', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "api"."market_feed".* FROM "api"."market_feed"
  WHERE "market_feed"."tld" = 'io' AND "market_feed"."price_usd" <= 500
  ORDER BY "market_feed"."pounce_score" DESC, "market_feed"."id" DESC
  LIMIT 50 OFFSET 0
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
