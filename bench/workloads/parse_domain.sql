-- GET /rpc/parse_domain?name=... by anon: the normalisation and Public Suffix List split
-- every area runs on every name it stores, framed as PostgREST frames a request. Names
-- alternate between a multi-label suffix (co.uk), an IDN (münchen-N.de) and a wildcard
-- rule (*.kawasaki.jp), so the plan covers each path of pounce.parse_domain.
\set n random(1, 1000000)
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
SELECT set_config('role', 'anon', true),
       set_config('request.jwt.claims', '{"role": "anon"}', true),
       set_config('request.method', 'GET', true),
       set_config('request.path', '/rpc/parse_domain', true),
       set_config('request.headers', '{}', true);
SELECT api.check_request();
WITH pgrst_source AS (
  SELECT "api"."parse_domain"("name" := (ARRAY['shop-' || :n::int || '.co.uk',
                                                'münchen-' || :n::int || '.de',
                                                'www.city-' || :n::int || '.kawasaki.jp'])[1 + :n::int % 3])
    AS pgrst_scalar
)
SELECT /* bench-explain */ null::bigint AS total_result_set,
       1 AS page_total,
       coalesce(json_agg(_postgrest_t.pgrst_scalar)->0, 'null') AS body,
       nullif(current_setting('response.headers', true), '') AS response_headers,
       nullif(current_setting('response.status', true), '') AS response_status
FROM (SELECT * FROM pgrst_source) AS _postgrest_t;
COMMIT;
