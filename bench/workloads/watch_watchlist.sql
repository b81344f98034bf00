-- GET /watchlist?order=domain by a Tycoon member with a full watchlist (500 domains,
-- bench/generate/40_watch.sql): every watched domain with its latest status and
-- health in one request, from stored results only. Framed as PostgREST frames every
-- request (see notifications_page.sql). The plan should be an index scan of the
-- member's watched_domains (RLS) joined by primary key to monitored_domains and to
-- each domain's latest check.
\set t random(1, :users / 10)
\set n 10 * :t
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'member', true),
       set_config('request.jwt.claims',
                  json_build_object('sub', md5('bench-user-' || :n::int)::uuid, 'role', 'member')::text, true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/watchlist', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "api"."watchlist".* FROM "api"."watchlist"
  ORDER BY "watchlist"."domain" ASC
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
