-- GET /tld_offers?tld=eq.<tld>&kind=eq.registration&order=price.asc by anon: where to
-- register a TLD now. The tld filter reaches the history index under DISTINCT ON.
\set t random(1, 12)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/tld_offers', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "api"."tld_offers".* FROM "api"."tld_offers"
  WHERE "tld_offers"."tld" = (ARRAY['com', 'net', 'org', 'io', 'dev', 'app', 'ai', 'co', 'xyz', 'de', 'uk', 'shop'])[:t] AND "tld_offers"."kind" = 'registration'
  ORDER BY "tld_offers"."price" ASC
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       pg_catalog.count(_postgrest_t) AS page_total,
       coalesce(json_agg(_postgrest_t), '[]') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
