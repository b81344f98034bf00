-- =============================================================================
-- Alerts: sniper alerts and the members a daily digest is built for
-- =============================================================================
-- Scale 1: 10,000 active sniper alerts and 100,000 members with news for their daily
-- digest. Members 1-1,000 are the core generator's (with its notification history);
-- the other 99,000 are this step's, each with 3 notifications in the last 20 hours (a
-- price change, a watch status, a daily-delivery sniper match). bench/alerts.py brings the
-- 20,000 new and changed auctions itself, inside a transaction it rolls back, and
-- measures one matching run (with the one-query-per-alert baseline) and the digest build.
--
-- Alert mix, as members write them: 79.5% one or two dictionary keywords (4-7 letters) (half of
-- them also with TLDs, half with a maximum price), 20% no keyword but TLDs and a
-- short name (3-4 characters) under $25-$250 with a score of 70-89, 0.5% the same
-- without TLDs. Delivery: 60%
-- instant, 30% daily, 10% weekly. Alerts are keyed by name ('bench-alert-<i>').

SELECT setseed(0.60);

DELETE FROM pounce.sniper_alerts WHERE current_setting('bench.reset')::boolean AND name LIKE 'bench-alert-%';
DELETE FROM pounce.users
WHERE current_setting('bench.reset')::boolean AND email LIKE '%@bench-alerts.pounce.test';

-- The digest's members: the core generator's (bench-<n>@bench.pounce.test, n up to
-- 1,000 x scale) and, beyond them, members of this step's own
-- (bench-digest-<n>@bench-alerts.pounce.test, id md5('bench-digest-user-' || n)), so the
-- core step's counts stay its own.
INSERT INTO pounce.users (id, email, password_hash, role, tier, created_at)
SELECT md5('bench-digest-user-' || n)::uuid, 'bench-digest-' || n || '@bench-alerts.pounce.test', pw.hash, 'member',
       CASE WHEN n % 10 = 0 THEN 'tycoon' WHEN n % 3 = 0 THEN 'trader' ELSE 'scout' END,
       now() - interval '90 days'
FROM generate_series(round(1000 * current_setting('bench.scale')::numeric)::int + 1,
                     round(100000 * current_setting('bench.scale')::numeric)::int) AS n,
     (SELECT public.crypt('bench-password-1', public.gen_salt('bf', 4)) AS hash) AS pw
ON CONFLICT DO NOTHING;

-- member n of the digest (the core's for n <= 1,000 x scale, else this step's)
CREATE FUNCTION pg_temp.bench_member(n integer) RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN n <= round(1000 * current_setting('bench.scale')::numeric)
              THEN md5('bench-user-' || n)::uuid ELSE md5('bench-digest-user-' || n)::uuid END
$$;

CREATE TEMP TABLE bench_alert_words ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY word)::int AS i, word FROM pounce.words WHERE length(word) BETWEEN 4 AND 7;
ALTER TABLE bench_alert_words ADD PRIMARY KEY (i);

-- Alert i belongs to digest member i (one alert each: within every plan's limit).
INSERT INTO pounce.sniper_alerts (user_id, name, keywords, tlds, max_price, max_length, min_score, no_digits,
                                  no_hyphens, delivery)
SELECT pg_temp.bench_member(g.i), 'bench-alert-' || g.i,
       CASE WHEN g.r1 < 0.795 THEN
         ARRAY(SELECT w.word FROM bench_alert_words AS w
               WHERE w.i IN (1 + (hashint4(g.i) & 2147483647) % c.words,
                             CASE WHEN g.r2 < 0.4 THEN 1 + (hashint4(g.i * 7 + 1) & 2147483647) % c.words END))
         ELSE '{}' END,
       CASE WHEN g.r1 >= 0.995 THEN NULL
            WHEN g.r1 >= 0.795 OR g.r3 < 0.5 THEN
              CASE g.i % 5 WHEN 0 THEN '{com}'::text[] WHEN 1 THEN '{io,ai}' WHEN 2 THEN '{net,org}'
                           WHEN 3 THEN '{com,net}' ELSE '{de}' END END,
       CASE WHEN g.r1 >= 0.795 THEN (ARRAY[25, 50, 100, 250])[1 + g.i % 4]
            WHEN g.r4 < 0.5 THEN (ARRAY[50, 100, 250, 500, 1000, 5000])[1 + g.i % 6] END,
       CASE WHEN g.r1 >= 0.795 THEN 3 + g.i % 2 END,
       CASE WHEN g.r1 >= 0.795 THEN 70 + g.i % 20 END,
       g.r5 < 0.3, g.r5 < 0.5,
       CASE WHEN g.r6 < 0.6 THEN 'instant' WHEN g.r6 < 0.9 THEN 'daily' ELSE 'weekly' END
FROM (SELECT i, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5, random() AS r6
      FROM generate_series(1, round(10000 * current_setting('bench.scale')::numeric)::int) AS i) AS g
CROSS JOIN (SELECT count(*)::int AS words FROM bench_alert_words) AS c
WHERE NOT EXISTS (SELECT FROM pounce.sniper_alerts AS a WHERE a.name = 'bench-alert-' || g.i);

-- What the next daily digest groups for this step's members (the core's have their
-- own history), in the core generator's kinds (dedup keys make a re-run add nothing).
INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key, created_at)
SELECT md5('bench-digest-user-' || g.n)::uuid, k.kind,
       CASE k.kind
         WHEN 'price.change' THEN jsonb_build_object('tld', 'com', 'registrar', 'bench-registrar-' || g.n % 12,
              'action', 'renew', 'old_price', 10.99, 'new_price', 12.49, 'currency', 'USD')
         WHEN 'watch.status' THEN jsonb_build_object('domain', 'bench-' || g.n || '.com', 'status', 'expiring')
         ELSE jsonb_build_object('alert_id', 0, 'alert_name', 'bench digest', 'delivery', 'daily',
              'item_kind', 'auction', 'item_id', g.n, 'domain', 'bench-match-' || g.n || '.io', 'source', 'godaddy',
              'price', 120, 'currency', 'USD', 'price_usd', 120, 'end_time', now() + interval '2 days',
              'pounce_score', 55, 'url', 'https://godaddy.example/auction/' || g.n, 'price_drop', false)
       END,
       'bench-digest-' || k.j, now() - random() * interval '20 hours'
FROM generate_series(round(1000 * current_setting('bench.scale')::numeric)::int + 1,
                     round(100000 * current_setting('bench.scale')::numeric)::int) AS g(n)
CROSS JOIN LATERAL (VALUES (1, 'price.change'), (2, 'watch.status'), (3, 'sniper.match')) AS k(j, kind)
ON CONFLICT (user_id, kind, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING;

-- Generated items are not news: the matching job starts after them.
UPDATE pounce.alert_match_watermark SET matched_through = now(), updated_at = now();

SELECT 'pounce.sniper_alerts' AS relation, count(*) AS rows FROM pounce.sniper_alerts WHERE name LIKE 'bench-alert-%'
UNION ALL
SELECT 'digest members', count(*) FROM pounce.users
WHERE email LIKE '%@bench.pounce.test' OR email LIKE '%@bench-alerts.pounce.test'
UNION ALL
SELECT 'pounce.notifications (digest news)', count(*) FROM pounce.notifications WHERE dedup_key LIKE 'bench-digest-%';
