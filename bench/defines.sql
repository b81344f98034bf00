-- Variables every workload receives as pgbench defines (-D name=value), read from the
-- database before each sweep: one row (name, value) each. An area that generates rows
-- a workload picks at random adds a UNION ALL branch here.
SELECT 'users' AS name, count(*) AS value
FROM pounce.users WHERE email LIKE '%@bench.pounce.test'
UNION ALL
-- The feed's default sort after 499 pages of 50: the (score, id) a page-500 cursor holds
-- (the last row's, when the feed is shorter).
SELECT 'feed_p500_' || kv.k, kv.v FROM (
  SELECT score, id FROM (
    SELECT pounce_score AS score, id FROM api.market_feed ORDER BY pounce_score DESC, id DESC LIMIT 24950) AS first_pages
  ORDER BY score, id LIMIT 1
) AS p, LATERAL (VALUES ('score', p.score::bigint), ('id', p.id)) AS kv(k, v);
