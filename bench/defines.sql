-- Variables every workload receives as pgbench defines (-D name=value), read from the
-- database before each sweep: one row (name, value) each. An area that generates rows
-- a workload picks at random adds a UNION ALL branch here.
SELECT 'users' AS name, count(*) AS value
FROM pounce.users WHERE email LIKE '%@bench.pounce.test';
