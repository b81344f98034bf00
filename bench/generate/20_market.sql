-- =============================================================================
-- Market: auctions, listings, comparable sales, valuations, market names
-- =============================================================================
-- Scale 1: 1,000,000 active auctions over 8 platforms, 100,000 active listings (sold
-- by the bench members), 200,000 sales over the last 3 years.
--
-- Names are built from the dictionary (pounce.words) the way aftermarket inventory
-- looks: single words, two-word compounds, word + digits, hyphenated pairs, brandable
-- letter strings, short letter and number names. TLDs follow a .com-heavy mix, prices
-- a log-normal with a long tail (median ~$60, 1 in 1,000 above $20,000), end times
-- spread over the next 10 days, bids mostly 0 with a tail.
--
-- Auctions are keyed (platform, platform_id = 'bench-<n>'), sales (domain, sold_on,
-- venue), listings by their bench seller and domain: a re-run adds nothing twice.
-- Valuations: every item gets est_value from pounce.estimate_value, the function the
-- pg_cron job runs (here over the whole table at once, in parallel).

SELECT setseed(0.20);

DELETE FROM pounce.auctions WHERE current_setting('bench.reset')::boolean AND platform_id LIKE 'bench-%';
DELETE FROM pounce.sales WHERE current_setting('bench.reset')::boolean AND venue LIKE 'bench-%';
-- (bench members' listings went with the members in 10_core.sql)

-- Words by ordinal, for picking random words by index.
CREATE TEMP TABLE bench_words ON COMMIT DROP AS
SELECT row_number() OVER (ORDER BY word)::int AS i, word FROM pounce.words WHERE length(word) BETWEEN 3 AND 9;
ALTER TABLE bench_words ADD PRIMARY KEY (i);

-- label number n, of a kind drawn from r (0-1), out of `words` dictionary words; one
-- function, so auctions, listings and sales share the name mix
CREATE FUNCTION pg_temp.bench_label(n bigint, r double precision, r2 double precision, words integer) RETURNS text
LANGUAGE sql STABLE AS $$
  WITH w AS (SELECT (SELECT word FROM bench_words WHERE i = 1 + (hashint8(n) & 2147483647) % words) AS w1,
                    (SELECT word FROM bench_words WHERE i = 1 + (hashint8(n * 7 + 3) & 2147483647) % words) AS w2)
  SELECT CASE
    WHEN r < 0.28 THEN w1
    WHEN r < 0.58 THEN left(w1 || w2, 20)
    WHEN r < 0.68 THEN w1 || (1 + (r2 * 2030)::int)
    WHEN r < 0.76 THEN w1 || '-' || w2
    WHEN r < 0.90 THEN substr(translate(md5(n::text), '0123456789', 'aeiouybrtn'), 1, 4 + (r2 * 8)::int)
    WHEN r < 0.95 THEN substr(translate(md5(n::text || 'x'), '0123456789', 'qwxzkjvpgh'), 1, 2 + (r2 * 2)::int)
    ELSE (10 + (r2 * 999990)::int)::text
  END
  FROM w;
$$;

-- TLD by a draw r (0-1): .com-heavy, as aftermarket inventory is.
CREATE FUNCTION pg_temp.bench_tld(r double precision) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN r < 0.46 THEN 'com' WHEN r < 0.54 THEN 'net' WHEN r < 0.60 THEN 'org' WHEN r < 0.66 THEN 'io'
    WHEN r < 0.70 THEN 'ai' WHEN r < 0.73 THEN 'co' WHEN r < 0.77 THEN 'de' WHEN r < 0.80 THEN 'co.uk'
    WHEN r < 0.85 THEN 'xyz' WHEN r < 0.87 THEN 'app' WHEN r < 0.89 THEN 'dev' WHEN r < 0.91 THEN 'me'
    WHEN r < 0.93 THEN 'info' WHEN r < 0.95 THEN 'online' WHEN r < 0.97 THEN 'shop' ELSE 'store' END;
$$;

-- ---- Auctions ----------------------------------------------------------------
INSERT INTO pounce.auctions (platform, platform_id, domain, sld, tld, auction_type, current_price, currency,
                             bids, end_time, url, first_seen, last_seen, updated_at)
SELECT p.platform, 'bench-' || g.n, l.sld || '.' || t.tld, l.sld, t.tld,
       CASE WHEN g.r4 < 0.8 THEN 'bid' ELSE 'buy_now' END,
       least(round(exp(4.1 + 1.6 * g.z)::numeric, 0), 5000000),
       'USD',
       CASE WHEN g.r4 < 0.8 THEN floor(-ln(1 - g.r5 * 0.999) * 2.5 * (g.r5 > 0.55)::int)::int ELSE 0 END,
       now() + interval '5 minutes' + g.r6 * interval '10 days',
       'https://' || p.platform || '.example/auction/' || g.n,
       now() - g.r5 * interval '20 days', now(), now() - g.r5 * interval '20 days'
FROM (
  SELECT n, random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5, random() AS r6,
         -- a standard normal draw (Box-Muller) for log-normal prices
         sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()) AS z
  FROM generate_series(1, round(1000000 * current_setting('bench.scale')::numeric)::int) AS n
) AS g
CROSS JOIN (SELECT count(*)::int AS words FROM bench_words) AS w
CROSS JOIN LATERAL (SELECT pg_temp.bench_label(g.n, g.r1, g.r2, w.words) AS sld) AS l
CROSS JOIN LATERAL (SELECT pg_temp.bench_tld(g.r3) AS tld) AS t
CROSS JOIN LATERAL (SELECT (ARRAY['godaddy', 'namejet', 'snapnames', 'dropcatch', 'sedo', 'dynadot', 'afternic',
                                  'park-io'])[1 + g.n % 8] AS platform) AS p
ON CONFLICT DO NOTHING;

-- ---- Sales ---------------------------------------------------------------------
-- Bulk load without the HNSW index, then build it once (a DBA's bulk-load routine:
-- one build is far cheaper than one graph insertion per row).
CREATE TEMP TABLE bench_saved_indexes ON COMMIT DROP AS
SELECT pg_get_indexdef(i.indexrelid) AS def, c.relname
FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indexrelid JOIN pg_am AS am ON am.oid = c.relam
WHERE i.indrelid IN ('pounce.sales'::regclass, 'pounce.market_names'::regclass) AND am.amname = 'hnsw';
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT relname FROM bench_saved_indexes LOOP EXECUTE format('DROP INDEX pounce.%I', r.relname); END LOOP;
END $$;

INSERT INTO pounce.sales (domain, sld, tld, price, currency, price_usd, sold_on, venue)
SELECT l.sld || '.' || t.tld, l.sld, t.tld, price, 'USD', price, current_date - (g.r4 * 1095)::int,
       'bench-' || (ARRAY['sedo', 'afternic', 'godaddy', 'namejet', 'dan'])[1 + g.n % 5]
FROM (
  SELECT n, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
         greatest(round(exp(6.2 + 1.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 0), 10)
           AS price
  FROM generate_series(1, round(200000 * current_setting('bench.scale')::numeric)::int) AS n
) AS g
CROSS JOIN (SELECT count(*)::int AS words FROM bench_words) AS w
CROSS JOIN LATERAL (SELECT pg_temp.bench_label(g.n + 50000000, g.r1, g.r2, w.words) AS sld) AS l
CROSS JOIN LATERAL (SELECT pg_temp.bench_tld(g.r3) AS tld) AS t
ON CONFLICT DO NOTHING;

-- ---- Listings --------------------------------------------------------------------
-- Bench sellers have plan limits far below 100 listings each, so the member-facing
-- trigger (domain normalisation, plan limit) is off for this bulk load: names are
-- generated normalised and verified. The other triggers (word quality, USD price, the
-- public offer) run as for any writer.
ALTER TABLE pounce.listings DISABLE TRIGGER listings_a_write;
INSERT INTO pounce.listings (seller_id, domain, sld, tld, asking_price, currency, price_usd, status,
                             verified_at, created_at, updated_at)
SELECT md5('bench-user-' || (1 + g.n % u.users))::uuid, l.sld || '.' || t.tld, l.sld, t.tld, g.price, 'USD',
       g.price, 'active', now() - g.r4 * interval '60 days',
       now() - g.r4 * interval '60 days', now() - g.r4 * interval '60 days'
FROM (
  SELECT n, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
         greatest(round(exp(6.5 + 1.4 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 0), 20)
           AS price
  FROM generate_series(1, round(100000 * current_setting('bench.scale')::numeric)::int) AS n
) AS g
CROSS JOIN (SELECT count(*) AS users FROM pounce.users WHERE email LIKE '%@bench.pounce.test') AS u
CROSS JOIN (SELECT count(*)::int AS words FROM bench_words) AS w
CROSS JOIN LATERAL (SELECT pg_temp.bench_label(g.n + 90000000, g.r1, g.r2, w.words) AS sld) AS l
CROSS JOIN LATERAL (SELECT pg_temp.bench_tld(g.r3) AS tld) AS t
ON CONFLICT DO NOTHING;
ALTER TABLE pounce.listings ENABLE TRIGGER listings_a_write;

-- ---- Names on the market, and the vector indexes ------------------------------------
INSERT INTO pounce.market_names (sld)
SELECT sld FROM pounce.auctions WHERE status = 'active'
UNION
SELECT sld FROM pounce.listings WHERE status = 'active'
ON CONFLICT DO NOTHING;

SET LOCAL maintenance_work_mem = '1GB';
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT def FROM bench_saved_indexes LOOP EXECUTE r.def; END LOOP;
END $$;

-- ---- Valuations ------------------------------------------------------------------
-- estimate_value per item, computed by a parallel scan into a temp table (the function
-- is PARALLEL SAFE: one HNSW probe per item, so both CPUs help), then written in one
-- UPDATE per table.
ANALYZE pounce.auctions, pounce.listings;
SET LOCAL max_parallel_workers_per_gather = 4;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
CREATE TEMP TABLE bench_values ON COMMIT DROP AS
SELECT 'auction' AS kind, id, pounce.estimate_value(sld, tld, word_quality) AS est_value
FROM pounce.auctions WHERE status = 'active' AND valued_at IS NULL
UNION ALL
SELECT 'listing', id, pounce.estimate_value(sld, tld, word_quality)
FROM pounce.listings WHERE status = 'active' AND valued_at IS NULL;
UPDATE pounce.auctions AS a SET est_value = v.est_value, valued_at = now()
FROM bench_values AS v WHERE v.kind = 'auction' AND a.id = v.id;
UPDATE pounce.listings AS l SET est_value = v.est_value, valued_at = now()
FROM bench_values AS v WHERE v.kind = 'listing' AND l.id = v.id;

SELECT 'pounce.auctions (active)' AS relation, count(*) AS rows FROM pounce.auctions WHERE status = 'active'
UNION ALL
SELECT 'pounce.listings (active)', count(*) FROM pounce.listings WHERE status = 'active'
UNION ALL
SELECT 'pounce.sales', count(*) FROM pounce.sales
UNION ALL
SELECT 'pounce.market_names', count(*) FROM pounce.market_names;
