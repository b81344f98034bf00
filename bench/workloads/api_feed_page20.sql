-- GET /rpc/feed?page_size=20 by anon: the market feed's first page (default sort), as
-- the local API server runs it (`pounce bench http` loads the same request over HTTP, so
-- the two give the API layer's overhead as a ratio). A SETOF function's rows go through
-- the same filter/order/limit wrapper as a view's; db-max-rows is the LIMIT.
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/rpc/feed', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_fn AS (SELECT pgrst_call.* FROM "api"."feed"("page_size" => CAST('20' AS "pg_catalog"."int4")) AS pgrst_call)
SELECT /* bench-explain */ NULL::bigint AS total, count(*) AS n,
       coalesce(json_agg(pgrst_t), '[]')::text AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_fn AS pgrst_source WHERE true LIMIT 1000) AS pgrst_t;
COMMIT;
