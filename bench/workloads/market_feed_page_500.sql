-- GET /rpc/feed?cursor=... by anon: page 500 of the default sort (50 rows a page), by
-- keyset. The cursor is the one the client holds after 499 pages: the (score, id) of
-- row 24,950, found once by bench/defines.sql. Plan: the same Merge Append as page 1,
-- started at the cursor by an index condition, so it costs what page 1 costs.
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/rpc/feed', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "feed".* FROM "api"."feed"("cursor" := translate(encode(convert_to(
    jsonb_build_object('s', 'score', 'k', :feed_p500_score::integer, 'i', :feed_p500_id::bigint)::text, 'UTF8'), 'base64'),
    E'+/=\n', '-_')) AS "feed"
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
