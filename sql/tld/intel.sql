-- =============================================================================
-- TLD intel: one row per TLD, materialized, and the TLD API
-- =============================================================================
-- Prices are compared in US dollars through pounce.currencies.usd_rate (today's rate,
-- also for past prices); an offer in a currency without a rate is left out of the
-- comparisons. The materialized view is refreshed by pg_cron; api.tld_intel reads it.

-- tld_auction_stats(): active auctions and their median price (USD) per TLD, from the
-- market's pounce.auctions; no rows while that table does not exist. The query text
-- is fixed (EXECUTE only because the table may be created after this function).
-- A name under a multi-label suffix (example.co.uk) counts for its TLD (uk).
CREATE FUNCTION pounce.tld_auction_stats()
RETURNS TABLE (tld text, active_auctions bigint, median_price_usd numeric)
LANGUAGE plpgsql STABLE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  IF to_regclass('pounce.auctions') IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE $q$
    SELECT split_part(a.tld, '.', -1), count(*),
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY (a.current_price * c.usd_rate)::float8)::numeric, 2)
    FROM pounce.auctions AS a
    LEFT JOIN pounce.currencies AS c ON c.code = a.currency
    WHERE a.status = 'active' AND (a.end_time IS NULL OR a.end_time > now())  -- buy-now has no end
    GROUP BY 1 $q$;
END $$;
COMMENT ON FUNCTION pounce.tld_auction_stats() IS
  'Active auctions and median auction price in USD per TLD (empty until the market''s pounce.auctions exists).';

-- -----------------------------------------------------------------------------
-- The materialized view
-- -----------------------------------------------------------------------------
CREATE MATERIALIZED VIEW pounce.tld_intel AS
WITH latest AS (
  -- the id of every offer's current row: a backward index-only scan of
  -- tld_prices_offer_history (sorting the history instead took most of the refresh)
  SELECT DISTINCT ON (p.tld, p.registrar, p.kind) p.id
  FROM pounce.tld_prices AS p
  ORDER BY p.tld DESC, p.registrar DESC, p.kind DESC, p.observed_at DESC
),
offer_now AS MATERIALIZED (
  -- every offer's current row (withdrawn offers have no currency and drop out below);
  -- MATERIALIZED: the planner, misjudging how few currencies have a rate, would
  -- otherwise join the whole history to currencies before picking the current rows
  SELECT p.tld, p.registrar, p.kind, p.price, p.currency, p.promo, p.promo_terms, p.regular_price, p.last_seen_at
  FROM latest
  JOIN pounce.tld_prices AS p USING (id)
),
registrar_now AS (
  -- a registrar's prices for a TLD today, in USD
  SELECT o.tld, o.registrar,
         max(round(o.price * c.usd_rate, 2)) FILTER (WHERE o.kind = 'registration') AS registration_usd,
         bool_or(o.promo) FILTER (WHERE o.kind = 'registration') AS registration_promo,
         max(round(o.price * c.usd_rate, 2)) FILTER (WHERE o.kind = 'renewal') AS renewal_usd,
         -- a first-year-only renewal promotion ends after one renewal
         max(round(CASE WHEN o.promo AND o.promo_terms = 'first_year_only' THEN coalesce(o.regular_price, o.price)
                        ELSE o.price END * c.usd_rate, 2)) FILTER (WHERE o.kind = 'renewal') AS later_renewal_usd,
         max(round(o.price * c.usd_rate, 2)) FILTER (WHERE o.kind = 'transfer') AS transfer_usd,
         max(o.last_seen_at) AS last_seen_at
  FROM offer_now AS o
  JOIN pounce.currencies AS c ON c.code = o.currency AND c.usd_rate IS NOT NULL
  GROUP BY o.tld, o.registrar
),
per_tld AS (
  SELECT r.tld,
         count(r.registration_usd) AS registrars,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.registration_usd::float8) AS median_registration,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.renewal_usd::float8) AS median_renewal,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY r.transfer_usd::float8) AS median_transfer,
         max(r.last_seen_at) AS last_seen_at
  FROM registrar_now AS r
  GROUP BY r.tld
),
cheapest_registration AS (
  SELECT DISTINCT ON (r.tld) r.tld, r.registrar, r.registration_usd, r.registration_promo, r.later_renewal_usd
  FROM registrar_now AS r
  WHERE r.registration_usd IS NOT NULL
  ORDER BY r.tld, r.registration_usd, r.registrar
),
cheapest_renewal AS (
  SELECT DISTINCT ON (r.tld) r.tld, r.registrar, r.renewal_usd
  FROM registrar_now AS r
  WHERE r.renewal_usd IS NOT NULL
  ORDER BY r.tld, r.renewal_usd, r.registrar
),
three_year_leader AS (
  -- registration, then two renewals (a first-year-only renewal promotion for the first)
  SELECT DISTINCT ON (r.tld) r.tld, r.registrar, r.registration_usd + r.renewal_usd + r.later_renewal_usd AS cost
  FROM registrar_now AS r
  WHERE r.registration_usd IS NOT NULL AND r.renewal_usd IS NOT NULL
  ORDER BY r.tld, r.registration_usd + r.renewal_usd + r.later_renewal_usd, r.registrar
),
points AS (
  -- the times the cheapest registration is looked up at: 30, 90 and 365 days ago, and
  -- the start of each of the last twelve months (the sparkline)
  SELECT d.days AS days_ago, now() - make_interval(days => d.days) AS at
  FROM (VALUES (30), (90), (365)) AS d(days)
  UNION ALL
  SELECT NULL, date_trunc('month', now()) - make_interval(months => m)
  FROM generate_series(0, 11) AS m
),
registration_history AS (
  -- each registration price with the time it held until (the next row of its offer)
  SELECT h.tld, h.usd, h.valid_from, h.valid_until
  FROM (SELECT p.tld, round(p.price * c.usd_rate, 2) AS usd, p.observed_at AS valid_from,
               lead(p.observed_at) OVER (PARTITION BY p.tld, p.registrar ORDER BY p.observed_at) AS valid_until
        FROM pounce.tld_prices AS p
        LEFT JOIN pounce.currencies AS c ON c.code = p.currency
        WHERE p.kind = 'registration') AS h
  WHERE h.usd IS NOT NULL AND (h.valid_until IS NULL OR h.valid_until > now() - interval '366 days')
),
cheapest_then AS (
  SELECT h.tld, pt.at, pt.days_ago, min(h.usd) AS usd
  FROM registration_history AS h
  JOIN points AS pt ON pt.at >= h.valid_from AND (h.valid_until IS NULL OR pt.at < h.valid_until)
  GROUP BY h.tld, pt.at, pt.days_ago
),
sparkline AS (
  SELECT t.tld, array_agg(ct.usd ORDER BY pt.at) AS monthly
  FROM pounce.tlds AS t
  CROSS JOIN points AS pt
  LEFT JOIN cheapest_then AS ct ON ct.tld = t.tld AND ct.at = pt.at
  WHERE pt.days_ago IS NULL
  GROUP BY t.tld
)
SELECT t.tld,
       t.tld_unicode,
       t.type,
       coalesce(a.registrars, 0) AS registrars,
       cr.registration_usd AS cheapest_registration_usd,
       cr.registrar AS cheapest_registration_registrar,
       coalesce(cr.registration_promo, false) AS cheapest_registration_promo,
       cn.renewal_usd AS cheapest_renewal_usd,
       cn.registrar AS cheapest_renewal_registrar,
       round(a.median_registration::numeric, 2) AS median_registration_usd,
       round(a.median_renewal::numeric, 2) AS median_renewal_usd,
       round(a.median_transfer::numeric, 2) AS median_transfer_usd,
       round(cr.later_renewal_usd / nullif(cr.registration_usd, 0), 2) AS renewal_trap_ratio,
       l.cost AS three_year_cost_usd,
       l.registrar AS three_year_leader,
       round(100 * (cr.registration_usd - c30.usd) / nullif(c30.usd, 0), 2) AS cheapest_change_30d_pct,
       round(100 * (cr.registration_usd - c90.usd) / nullif(c90.usd, 0), 2) AS cheapest_change_90d_pct,
       round(100 * (cr.registration_usd - c365.usd) / nullif(c365.usd, 0), 2) AS cheapest_change_365d_pct,
       s.monthly || cr.registration_usd AS cheapest_registration_monthly,
       coalesce(au.active_auctions, 0) AS active_auctions,
       au.median_price_usd AS median_auction_price_usd,
       a.last_seen_at AS prices_seen_at,
       now() AS refreshed_at
FROM pounce.tlds AS t
LEFT JOIN per_tld AS a ON a.tld = t.tld
LEFT JOIN cheapest_registration AS cr ON cr.tld = t.tld
LEFT JOIN cheapest_renewal AS cn ON cn.tld = t.tld
LEFT JOIN three_year_leader AS l ON l.tld = t.tld
LEFT JOIN cheapest_then AS c30 ON c30.tld = t.tld AND c30.days_ago = 30
LEFT JOIN cheapest_then AS c90 ON c90.tld = t.tld AND c90.days_ago = 90
LEFT JOIN cheapest_then AS c365 ON c365.tld = t.tld AND c365.days_ago = 365
LEFT JOIN sparkline AS s ON s.tld = t.tld
LEFT JOIN pounce.tld_auction_stats() AS au ON au.tld = t.tld;

-- REFRESH ... CONCURRENTLY needs a unique index; the list sorted by price uses the second.
CREATE UNIQUE INDEX tld_intel_tld ON pounce.tld_intel (tld);
CREATE INDEX tld_intel_cheapest_registration ON pounce.tld_intel (cheapest_registration_usd, tld);
COMMENT ON MATERIALIZED VIEW pounce.tld_intel IS 'Per-TLD price intelligence; refreshed by pounce.refresh_tld_intel().';

-- registration_cost_usd(tld): the cheapest first-year registration price of a TLD in
-- USD, from the intel view; NULL where no registrar's price is known. The market's
-- valuation starts a name's prior from it (sql/market/valuation.sql). A multi-label
-- suffix (co.uk) counts as its TLD (uk), as everywhere in this file.
CREATE FUNCTION pounce.registration_cost_usd(tld text)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT i.cheapest_registration_usd FROM pounce.tld_intel AS i
  WHERE i.tld = split_part(registration_cost_usd.tld, '.', -1);
END;
COMMENT ON FUNCTION pounce.registration_cost_usd(text) IS
  'Cheapest known first-year registration price of a TLD in USD (NULL when unknown).';

-- refresh_tld_intel(): recomputes the view without blocking its readers.
CREATE FUNCTION pounce.refresh_tld_intel() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  REFRESH MATERIALIZED VIEW CONCURRENTLY pounce.tld_intel;
END $$;
COMMENT ON FUNCTION pounce.refresh_tld_intel() IS 'pg_cron: refreshes pounce.tld_intel concurrently (readers are not blocked).';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.refresh_tld_intel', '*/15 * * * *', 'SELECT pounce.refresh_tld_intel()',
   'refresh the TLD intel materialized view');

-- -----------------------------------------------------------------------------
-- API
-- -----------------------------------------------------------------------------
GRANT SELECT ON pounce.tld_intel TO anon, member;
CREATE VIEW api.tld_intel WITH (security_invoker = true) AS
SELECT tld, tld_unicode, type, registrars,
       cheapest_registration_usd, cheapest_registration_registrar, cheapest_registration_promo,
       cheapest_renewal_usd, cheapest_renewal_registrar,
       median_registration_usd, median_renewal_usd, median_transfer_usd,
       renewal_trap_ratio, three_year_cost_usd, three_year_leader,
       cheapest_change_30d_pct, cheapest_change_90d_pct, cheapest_change_365d_pct,
       cheapest_registration_monthly, active_auctions, median_auction_price_usd,
       prices_seen_at, refreshed_at
FROM pounce.tld_intel;
COMMENT ON VIEW api.tld_intel IS
  'One row per TLD: registrars offering it, cheapest registration and renewal (USD) and where, median prices, '
  'renewal_trap_ratio (later renewal / first-year registration at the cheapest registrar), 3-year cost leader, '
  'change of the cheapest registration over 30/90/365 days (%), cheapest registration at the start of each of the '
  'last 12 months plus now (sparkline), active auctions and their median price. Refreshed every 15 minutes. '
  'Cheapest first: ?order=cheapest_registration_usd.asc.nullslast&limit=50.';
GRANT SELECT ON api.tld_intel TO anon, member;

-- tld_compare(tlds): the intel rows of the given TLDs, in the order given (".com",
-- "COM" and Unicode forms are accepted).
CREATE FUNCTION api.tld_compare(tlds text[]) RETURNS SETOF api.tld_intel
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT i.*
  FROM unnest(tld_compare.tlds) WITH ORDINALITY AS u(name, n)
  JOIN api.tld_intel AS i ON lower(ltrim(btrim(u.name), '.')) IN (i.tld, i.tld_unicode)
  ORDER BY u.n;
END;
COMMENT ON FUNCTION api.tld_compare(text[]) IS
  'Side-by-side intel of several TLDs, in the order given: /rpc/tld_compare?tlds={com,io,dev}.';
GRANT EXECUTE ON FUNCTION api.tld_compare(text[]) TO anon, member;

-- The current price of every offer (withdrawn offers left out); filter by tld. The
-- current rows are found by a backward index-only scan of the TLD's range of
-- tld_prices_offer_history (tld and kind filters reach it: they are DISTINCT ON keys),
-- then fetched by id: a TLD's page reads its current rows, not its whole history.
GRANT SELECT ON pounce.tld_prices TO anon, member;
CREATE VIEW api.tld_offers WITH (security_invoker = true) AS
SELECT l.tld, l.registrar, l.kind, p.price, p.currency, p.promo, p.promo_terms, p.regular_price,
       p.observed_at AS since, p.last_seen_at
FROM (SELECT DISTINCT ON (c.tld, c.registrar, c.kind) c.tld, c.registrar, c.kind, c.id
      FROM pounce.tld_prices AS c
      ORDER BY c.tld DESC, c.registrar DESC, c.kind DESC, c.observed_at DESC) AS l
JOIN pounce.tld_prices AS p ON p.id = l.id
WHERE p.price IS NOT NULL;
COMMENT ON VIEW api.tld_offers IS
  'Current price of each registrar''s offers: ?tld=eq.com&kind=eq.registration&order=price.asc. '
  'Filter by tld (the view reads the history index per TLD).';
GRANT SELECT ON api.tld_offers TO anon, member;

CREATE TYPE api.tld_price_point AS (
  registrar      text,
  kind           text,
  price          numeric(12,2),
  currency       text,
  promo          boolean,
  promo_terms    text,
  regular_price  numeric(12,2),
  observed_at    timestamptz,
  last_seen_at   timestamptz
);
COMMENT ON TYPE api.tld_price_point IS
  'A price of an offer and the time it held (observed_at .. last_seen_at); price NULL: offer withdrawn.';

-- tld_price_history(tld, registrar, kind, from, to): the prices of a TLD's offers that
-- held at some time between from and to (a price holds from its observed_at until the
-- next price of its offer), oldest first per offer.
CREATE FUNCTION api.tld_price_history(tld text, registrar text DEFAULT NULL, kind text DEFAULT NULL,
                                      "from" timestamptz DEFAULT NULL, "to" timestamptz DEFAULT NULL)
RETURNS SETOF api.tld_price_point
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  -- Two branches, so that the one plan of this function can use the index for each
  -- case: with a registrar (tld, registrar: one offer or four), or without (the TLD).
  SELECT h.registrar, h.kind, h.price, h.currency, h.promo, h.promo_terms, h.regular_price,
         h.observed_at, h.last_seen_at
  FROM (SELECT p.*, lead(p.observed_at) OVER (PARTITION BY p.registrar, p.kind ORDER BY p.observed_at) AS until
        FROM (SELECT * FROM pounce.tld_prices AS o
              WHERE o.tld = lower(ltrim(btrim(tld_price_history.tld), '.'))
                AND o.registrar = tld_price_history.registrar
              UNION ALL
              SELECT * FROM pounce.tld_prices AS o
              WHERE o.tld = lower(ltrim(btrim(tld_price_history.tld), '.'))
                AND tld_price_history.registrar IS NULL) AS p
        WHERE (tld_price_history.kind IS NULL OR p.kind = tld_price_history.kind)
          AND p.observed_at <= coalesce(tld_price_history."to", 'infinity')) AS h
  WHERE h.until IS NULL OR h.until > coalesce(tld_price_history."from", '-infinity')
  ORDER BY h.registrar, h.kind, h.observed_at;
END;
COMMENT ON FUNCTION api.tld_price_history(text, text, text, timestamptz, timestamptz) IS
  'Price history of a TLD''s offers between from and to (default: all), optionally one registrar and kind: '
  '/rpc/tld_price_history?tld=com&registrar=porkbun&kind=renewal&from=2026-01-01.';
GRANT EXECUTE ON FUNCTION api.tld_price_history(text, text, text, timestamptz, timestamptz) TO anon, member;
