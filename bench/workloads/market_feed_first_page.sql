-- GET /rpc/feed by anon: the market's front page, default sort (score), 50 rows. Plan:
-- a Merge Append of the two partial score indexes (auctions_feed_score,
-- listings_feed_score) that stops after 50 rows.
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/rpc/feed', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "feed".* FROM "api"."feed"() AS "feed"
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
