-- =============================================================================
-- TLD prices: 40 registrars x every TLD x 4 kinds, a year of history
-- =============================================================================
-- Scale 1: round(1500 * scale) TLDs, capped by pounce.tlds (the root zone has 1,442),
-- so scale 1 is 1,442 TLDs x 40 registrars x 4 kinds = 230,720 offers. 36 registrars
-- change a price about once a month (12 changes a year), 4 volatile ones about every
-- 6 days (60 a year): about 4.1 million price rows at scale 1.
--
-- The popular TLDs come first, so every scale has com, net, org, io, ...; rows are
-- inserted in time order, so ids grow with observed_at as they do when a collector
-- ingests day after day. A TLD that already has bench rows is skipped: a re-run adds
-- nothing and a larger scale adds TLDs. The generated history counts as detected
-- (the watermark is moved past it); the changes of its last 30 days are logged in
-- pounce.price_changes for the API workloads.
--
-- Inputs (set by `pounce bench generate`): bench.scale (numeric), bench.reset (boolean).

SELECT setseed(0.30);

-- Deleting the prices deletes their logged changes (ON DELETE CASCADE).
DELETE FROM pounce.tld_prices WHERE current_setting('bench.reset')::boolean AND registrar LIKE 'bench-%';
DELETE FROM pounce.tld_offers WHERE current_setting('bench.reset')::boolean AND registrar LIKE 'bench-%';
DELETE FROM pounce.registrars WHERE current_setting('bench.reset')::boolean AND registrar LIKE 'bench-%';

INSERT INTO pounce.registrars (registrar, name)
SELECT format('bench-%s', lpad(r::text, 2, '0')), format('Bench Registrar %s', r)
FROM generate_series(1, 40) AS r
ON CONFLICT DO NOTHING;

-- Every bench member watches three of the popular TLDs (one of them only for moves of
-- 10 % or more), so the job's fan-out has subscribers to reach.
INSERT INTO pounce.tld_price_alerts (user_id, tld, direction, min_change_pct)
SELECT u.id, (ARRAY['com', 'net', 'org', 'io', 'dev', 'app', 'ai', 'co', 'xyz', 'de', 'uk', 'shop'])[1 + (u.n + k) % 12],
       'any', CASE WHEN k = 2 THEN 10 ELSE 0 END
FROM (SELECT id, substring(email FROM '^bench-(\d+)@')::int AS n
      FROM pounce.users WHERE email LIKE '%@bench.pounce.test') AS u
CROSS JOIN generate_series(0, 2) AS k
ON CONFLICT DO NOTHING;

WITH chosen AS (
  SELECT t.tld, row_number() OVER (ORDER BY array_position(
           ARRAY['com', 'net', 'org', 'io', 'dev', 'app', 'ai', 'co', 'xyz', 'de', 'uk', 'shop'], t.tld) NULLS LAST,
           t.tld) AS ordinal
  FROM pounce.tlds AS t
),
todo AS (
  SELECT c.tld,
         -- a base price per TLD: most are cheap, some premium
         (4 + (abs(hashtext(c.tld)) % 60) + CASE WHEN abs(hashtext(c.tld)) % 10 = 0 THEN 80 ELSE 0 END)::numeric AS base
  FROM chosen AS c
  WHERE c.ordinal <= round(1500 * current_setting('bench.scale')::numeric)
    AND NOT EXISTS (SELECT FROM pounce.tld_prices AS p WHERE p.tld = c.tld AND p.registrar LIKE 'bench-%')
),
numbered AS (
  INSERT INTO pounce.tld_offers (tld, registrar, kind)
  SELECT t.tld, format('bench-%s', lpad(r::text, 2, '0')), k.kind
  FROM todo AS t
  CROSS JOIN generate_series(1, 40) AS r
  CROSS JOIN (VALUES ('registration'), ('renewal'), ('transfer'), ('restore')) AS k(kind)
  ORDER BY 1, 2, 3
  RETURNING offer_id, tld, registrar, kind
),
offers AS (
  SELECT n.offer_id, t.tld, t.base, r.r, n.registrar, k.kind, k.factor,
         CASE WHEN r.r <= 4 THEN 60 ELSE 12 END AS changes
  FROM todo AS t
  CROSS JOIN generate_series(1, 40) AS r(r)
  CROSS JOIN (VALUES ('registration', 1.0), ('renewal', 1.25), ('transfer', 1.1), ('restore', 8.0)) AS k(kind, factor)
  JOIN numbered AS n ON n.tld = t.tld AND n.registrar = format('bench-%s', lpad(r.r::text, 2, '0'))
                    AND n.kind = k.kind
),
points AS (
  -- change i of an offer falls at a random time inside the i-th slice of the year;
  -- the first row is a year ago
  SELECT o.offer_id, o.tld, o.registrar, o.kind, o.r,
         now() - interval '365 days'
           + (i - 1) * (interval '365 days' / o.changes)
           + CASE WHEN i = 1 THEN interval '0' ELSE random() * (interval '365 days' / o.changes) END AS observed_at,
         round(o.base * o.factor * (0.85 + 0.02 * (o.r % 10)) * (0.8 + 0.4 * random()::numeric), 2) AS price,
         o.kind = 'registration' AND o.r <= 8 AND random() < 0.15 AS promo
  FROM offers AS o
  CROSS JOIN LATERAL generate_series(1, o.changes + 1) AS i
)
INSERT INTO pounce.tld_prices (offer_id, tld, registrar, kind, price, currency, promo, promo_terms,
                               regular_price, observed_at, last_seen_at, source)
SELECT p.offer_id, p.tld, p.registrar, p.kind, p.price, 'USD', p.promo,
       CASE WHEN p.promo THEN 'first_year_only' END,
       CASE WHEN p.promo THEN round(p.price * 1.6, 2) END,
       p.observed_at,
       -- seen daily until the day before the next change (the current price: an hour ago)
       greatest(p.observed_at, coalesce(lead(p.observed_at) OVER w - interval '1 day', now() - interval '1 hour')),
       'bench'
FROM points AS p
WHERE p.observed_at <= now() - interval '1 hour'
WINDOW w AS (PARTITION BY p.tld, p.registrar, p.kind ORDER BY p.observed_at)
ORDER BY p.observed_at
ON CONFLICT DO NOTHING;

-- The generated history counts as detected; its last 30 days are logged.
INSERT INTO pounce.price_changes (price_id, tld, registrar, kind, old_price, old_currency, new_price, new_currency,
                                  change, change_pct, direction, observed_at)
SELECT e.price_id, e.tld, e.registrar, e.kind, e.old_price, e.old_currency, e.new_price, e.new_currency,
       e.change, e.change_pct, e.direction, e.observed_at
FROM pounce.price_change_watermark AS w,
     pounce.price_change_events(
       coalesce((SELECT max(id) FROM pounce.tld_prices WHERE observed_at < now() - interval '30 days'), 0),
       (SELECT max(id) FROM pounce.tld_prices)) AS e
WHERE e.price_id > w.last_price_id
ON CONFLICT (price_id) DO NOTHING;
UPDATE pounce.price_change_watermark
SET last_price_id = coalesce((SELECT max(id) FROM pounce.tld_prices), 0), updated_at = now();

SELECT pounce.refresh_tld_intel();

SELECT 'pounce.tld_prices' AS relation, count(*) AS rows FROM pounce.tld_prices WHERE registrar LIKE 'bench-%'
UNION ALL
SELECT 'pounce.tld_offers', count(*) FROM pounce.tld_offers WHERE registrar LIKE 'bench-%'
UNION ALL
SELECT 'pounce.price_changes (last 30 days)', count(*) FROM pounce.price_changes WHERE registrar LIKE 'bench-%'
UNION ALL
SELECT 'pounce.tld_price_alerts', count(*) FROM pounce.tld_price_alerts AS a
JOIN pounce.users AS u ON u.id = a.user_id WHERE u.email LIKE '%@bench.pounce.test';
