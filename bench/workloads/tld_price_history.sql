-- GET /rpc/tld_price_history?tld=<tld>&registrar=bench-NN&kind=registration by anon: a
-- year of one offer's prices (a chart). The plan should be a range scan of
-- tld_prices_offer_history.
\set t random(1, 12)
\set r random(1, 40)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/rpc/tld_price_history', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "pgrst_call".* FROM "api"."tld_price_history"("tld" := (ARRAY['com', 'net', 'org', 'io', 'dev', 'app', 'ai', 'co', 'xyz', 'de', 'uk', 'shop'])[:t],
    "registrar" := 'bench-' || lpad(:r::text, 2, '0'), "kind" := 'registration') AS "pgrst_call"
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
