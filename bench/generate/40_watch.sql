-- =============================================================================
-- Watch: watchlists, the monitored domains behind them, and their latest checks
-- =============================================================================
-- Every generated member fills their plan's watchlist (scout 5, trader 50, tycoon 500:
-- about 68,000 entries at scale 1) from a pool of 40,000 names per scale, so popular
-- names are watched by several members and monitored once. Each monitored domain gets
-- one stored check (its latest), so api.watchlist has everything to show.
-- Member n's k-th name is bench-((n * 104729 + k) % pool + 1).com: consecutive names
-- from a point that differs per member, so one member's are distinct and the
-- watchlists overlap about as much as popular names do; the same on every run.
--
-- Inputs: bench.scale, bench.reset (see 10_core.sql). Resetting members (10_core.sql)
-- already removed their watchlists; the generated domains and checks go here.

SELECT setseed(0.40);

DELETE FROM pounce.domain_checks
WHERE current_setting('bench.reset')::boolean AND domain LIKE 'bench-%.com';
DELETE FROM pounce.monitored_domains
WHERE current_setting('bench.reset')::boolean AND domain LIKE 'bench-%.com';

-- The triggers normalise each name, enforce the plan limits (every member ends at
-- exactly their limit) and create the monitored domains, set-based. Members who
-- already have a watchlist keep it (a re-run, or a larger scale, adds nothing to it).
INSERT INTO pounce.watched_domains (user_id, domain, added_at)
SELECT u.id,
       'bench-' || ((u.n::bigint * 104729 + k) % (40000 * current_setting('bench.scale')::numeric)::bigint + 1)
         || '.com',
       now() - random() * interval '300 days'
FROM (SELECT id, tier, substring(email FROM '^bench-(\d+)@')::int AS n
      FROM pounce.users AS x WHERE email LIKE 'bench-%@bench.pounce.test'
        AND NOT EXISTS (SELECT FROM pounce.watched_domains AS w WHERE w.user_id = x.id)) AS u
JOIN pounce.tiers AS t USING (tier),
     generate_series(1, t.watchlist_limit) AS k
ON CONFLICT (user_id, domain) DO NOTHING;

-- One latest check per monitored domain: mostly healthy registered sites, some with
-- problems, a few in the drop cycle or available.
WITH checks AS (
  INSERT INTO pounce.domain_checks (
    domain, checked_at, registration, registration_source, registrar, epp_statuses, registered_at, expires_at,
    nameservers, a, mx, txt, http_status, http_final_url, http_ms, parked, tls_issuer, tls_subject, tls_sans,
    tls_not_after, tls_hostname_ok, tls_chain_ok)
  SELECT m.domain, now() - r.age, r.registration, 'rdap',
         CASE WHEN r.registration <> 'available' THEN 'Bench Registrar ' || (r.pick % 7) END,
         CASE r.registration WHEN 'registered' THEN '{clientTransferProhibited}'::text[]
                             WHEN 'redemption' THEN '{redemptionPeriod}' WHEN 'pending_delete' THEN '{pendingDelete}'
                             ELSE '{}' END,
         now() - interval '5 years', now() + (r.pick % 700 - 60) * interval '1 day',
         ARRAY['ns1.bench-dns.net', 'ns2.bench-dns.net'], ARRAY['192.0.2.' || (1 + r.pick % 250)],
         ARRAY['10 mx.bench-mail.net'], ARRAY['v=spf1 -all'],
         CASE WHEN r.registration = 'registered' THEN (ARRAY[200, 200, 200, 200, 200, 200, 301, 404, 500, NULL])[1 + r.pick % 10] END,
         'https://' || m.domain || '/', 40 + r.pick % 900, r.pick % 23 = 0,
         'R3, Let''s Encrypt', m.domain, ARRAY[m.domain, 'www.' || m.domain],
         now() + (r.pick % 90 - 5) * interval '1 day', r.pick % 31 <> 0, r.pick % 37 <> 0
  FROM pounce.monitored_domains AS m,
       LATERAL (SELECT (random() * 1000000)::int AS pick, random() * interval '1 day' AS age,
                       CASE WHEN random() < 0.94 THEN 'registered' WHEN random() < 0.5 THEN 'available'
                            WHEN random() < 0.5 THEN 'redemption' ELSE 'pending_delete' END AS registration
                WHERE m.domain IS NOT NULL) AS r
  WHERE m.domain LIKE 'bench-%.com' AND m.last_check_id IS NULL
  RETURNING *)
UPDATE pounce.monitored_domains AS m
SET last_check_id = c.id, last_checked_at = c.checked_at, last_result_at = c.checked_at,
    latest = pounce.check_summary(c)
FROM checks AS c WHERE m.domain = c.domain;

SELECT 'pounce.watched_domains' AS relation, count(*) AS rows FROM pounce.watched_domains
UNION ALL SELECT 'pounce.monitored_domains', count(*) FROM pounce.monitored_domains
UNION ALL SELECT 'pounce.domain_checks', count(*) FROM pounce.domain_checks;
