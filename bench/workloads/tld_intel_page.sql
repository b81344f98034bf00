-- GET /tld_intel?order=cheapest_registration_usd.asc&limit=50 by anon: the TLD list,
-- cheapest first. The plan should read 50 rows of tld_intel_cheapest_registration.
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/tld_intel', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "api"."tld_intel".* FROM "api"."tld_intel"
  ORDER BY "tld_intel"."cheapest_registration_usd" ASC
  LIMIT 50 OFFSET 0
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
