-- =============================================================================
-- Core: members and their notification centers
-- =============================================================================
-- Scale 1: 1,000 members, 100 notifications each (100,000), spread over the last
-- 90 days, about 30% unread.
--
-- Rows are keyed by their ordinal (member n, notification j of that member): the id,
-- the e-mail and the dedup key follow from it. So a re-run inserts nothing twice, a
-- larger scale only adds rows, and a workload names a random member's id as
-- md5('bench-user-' || n)::uuid without a lookup, the way a JWT carries it.
--
-- Inputs (set by `pounce bench generate`): bench.scale (numeric), bench.reset (boolean).

-- Same data on every run and machine (timestamps are relative to now()).
SELECT setseed(0.10);

-- Deleting the members deletes their notifications (ON DELETE CASCADE).
DELETE FROM pounce.users
WHERE current_setting('bench.reset')::boolean
  AND email LIKE '%@bench.pounce.test';

-- One bcrypt hash (cost 4, of 'bench-password-1') for everyone: hashing per row would
-- make generation CPU-bound on bcrypt, and bench logins only need a valid hash.
-- Plans: about 63% scout, 27% trader, 10% tycoon.
INSERT INTO pounce.users (id, email, password_hash, role, tier, created_at)
SELECT md5('bench-user-' || n)::uuid,
       'bench-' || n || '@bench.pounce.test',
       pw.hash,
       'member',
       CASE WHEN n % 10 = 0 THEN 'tycoon' WHEN n % 3 = 0 THEN 'trader' ELSE 'scout' END,
       now() - interval '90 days' - random() * interval '275 days'
FROM generate_series(1, round(1000 * current_setting('bench.scale')::numeric)::int) AS n,
     (SELECT public.crypt('bench-password-1', public.gen_salt('bf', 4)) AS hash) AS pw
ON CONFLICT DO NOTHING;

-- random() is evaluated per row in the subquery (volatile functions keep it from being
-- flattened), so every row gets its own timestamp and read state.
INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key, created_at, read_at)
SELECT md5('bench-user-' || g.n)::uuid,
       k.kind,
       CASE k.kind
         WHEN 'price.change' THEN jsonb_build_object(
           'tld', (ARRAY['com', 'net', 'io', 'ai', 'dev', 'app'])[1 + g.j % 6],
           'registrar', 'bench-registrar-' || (g.j % 12),
           'action', 'register',
           'old_price', round((5 + g.r1 * 60)::numeric, 2),
           'new_price', round((5 + g.r2 * 60)::numeric, 2),
           'currency', 'USD')
         WHEN 'watch.status' THEN jsonb_build_object(
           'domain', 'bench-' || g.n || '-' || g.j || '.com',
           'status', (ARRAY['expiring', 'dropped', 'dns_changed', 'tls_expiring'])[1 + g.j % 4])
         ELSE jsonb_build_object(
           'domain', 'bench-' || g.n || '-' || g.j || '.io',
           'source', 'bench-auctions',
           'price', round((10 + g.r1 * 990)::numeric, 0),
           'currency', 'USD')
       END,
       'bench-' || g.j,
       g.created_at,
       CASE WHEN g.r3 >= 0.30
            THEN g.created_at + g.r2 * least(now() - g.created_at, interval '3 days') END
FROM (
  SELECT n, j, random() AS r1, random() AS r2, random() AS r3,
         now() - random() * interval '90 days' AS created_at
  FROM generate_series(1, round(1000 * current_setting('bench.scale')::numeric)::int) AS n,
       generate_series(1, 100) AS j
) AS g
CROSS JOIN LATERAL (
  SELECT CASE WHEN g.j % 10 < 5 THEN 'price.change'
              WHEN g.j % 10 < 8 THEN 'watch.status'
              ELSE 'sniper.match' END AS kind
) AS k
ON CONFLICT (user_id, kind, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING;

-- What this step left in the database (the runner prints the last result of each file).
SELECT 'pounce.users' AS relation, count(*) AS rows
FROM pounce.users WHERE email LIKE '%@bench.pounce.test'
UNION ALL
SELECT 'pounce.notifications', count(*)
FROM pounce.notifications AS n JOIN pounce.users AS u ON u.id = n.user_id
WHERE u.email LIKE '%@bench.pounce.test'
UNION ALL
SELECT 'pounce.notifications (unread)', count(*)
FROM pounce.notifications AS n JOIN pounce.users AS u ON u.id = n.user_id
WHERE u.email LIKE '%@bench.pounce.test' AND n.read_at IS NULL;
