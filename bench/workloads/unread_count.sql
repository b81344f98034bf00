-- GET /notifications?select=count()&read_at=is.null (the unread badge) by a signed-in
-- member, framed as PostgREST frames every request (see notifications_page.sql). The
-- plan should be an index-only scan of the partial index notifications_user_unread.
\set n random(1, :users)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'member', true),
       set_config('request.jwt.claims',
                  json_build_object('sub', md5('bench-user-' || :n::int)::uuid, 'role', 'member')::text, true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/notifications', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT pg_catalog.count(*) AS "count" FROM "api"."notifications"
  WHERE "notifications"."read_at" IS NULL
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
