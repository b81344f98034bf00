-- GET /notifications?order=created_at.desc,id.desc&limit=20 by a signed-in member: the
-- 20-row page `pounce bench http` loads over HTTP, here without the HTTP layer, so the
-- two give the API server's overhead as a ratio.
-- One transaction per request, as PostgREST runs it: switch role and set the JWT
-- claims and request GUCs, run the db-pre-request check, then one statement that
-- builds the JSON body (PostgREST 12's query shape). Row-level security limits the
-- view to the member's rows; the plan should be an index scan of
-- notifications_user_recent that stops after 20 rows.
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
  SELECT "api"."notifications".* FROM "api"."notifications"
  ORDER BY "notifications"."created_at" DESC, "notifications"."id" DESC
  LIMIT 20 OFFSET 0
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
