-- GET /tld_intel?tld=eq.<tld> by anon: one TLD's page. The plan should be an index
-- scan of the materialized view's unique index tld_intel_tld (one row).
\set t random(1, 12)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/tld_intel', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "api"."tld_intel".* FROM "api"."tld_intel"
  WHERE "tld_intel"."tld" = (ARRAY['com', 'net', 'org', 'io', 'dev', 'app', 'ai', 'co', 'xyz', 'de', 'uk', 'shop'])[:t]
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
