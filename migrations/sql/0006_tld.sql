SET ROLE pounce_owner;

-- ---- sql/core/identity.sql: the plan limit on price alerts ----
ALTER TABLE pounce.tiers ADD COLUMN tld_price_alert_limit integer NOT NULL DEFAULT 0
  CHECK (tld_price_alert_limit >= 0);
UPDATE pounce.tiers SET tld_price_alert_limit = CASE tier WHEN 'scout' THEN 5 WHEN 'trader' THEN 50 WHEN 'tycoon' THEN 500 END
WHERE tier IN ('scout', 'trader', 'tycoon');
ALTER TABLE pounce.tiers ALTER COLUMN tld_price_alert_limit DROP DEFAULT;

CREATE OR REPLACE VIEW api.me WITH (security_invoker = true) AS
SELECT u.id, u.email::text AS email, u.role, u.tier, t.name AS tier_name, u.created_at, u.last_login_at,
       t.watchlist_limit, t.check_interval, t.sniper_alert_limit, t.listing_limit,
       t.api_requests_per_minute, t.health_refreshes_per_hour, t.tld_price_alert_limit
FROM pounce.users AS u
JOIN pounce.tiers AS t USING (tier)
WHERE u.id = pounce.current_user_id();

CREATE OR REPLACE VIEW api.tiers WITH (security_invoker = true) AS
SELECT tier, name, rank, price_usd_month, watchlist_limit, check_interval, sniper_alert_limit,
       listing_limit, api_requests_per_minute, health_refreshes_per_hour, tld_price_alert_limit
FROM pounce.tiers;

-- ---- sql/tld/prices.sql ----
-- =============================================================================
-- TLD prices: registrars, the price history of every offer, ingestion
-- =============================================================================
-- An offer is (tld, registrar, kind). pounce.tld_prices holds its history: one row per
-- distinct price, appended when the price (or its currency or promotion) changes;
-- an observation of an unchanged price only moves last_seen_at of the current row. A
-- row with a NULL price records that the offer was withdrawn.
--
-- Change detection (changes.sql) reads new rows by id above a watermark. The watermark
-- row is also the gate that keeps ids and commits in step: ingestion holds it FOR SHARE
-- until it commits, detection takes it FOR UPDATE, so when detection runs no ingestion
-- is in flight and no id below max(id) can still appear.

-- -----------------------------------------------------------------------------
-- Registrars
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.registrars (
  registrar   text PRIMARY KEY CHECK (registrar ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
  name        text NOT NULL,
  website     text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pounce.registrars IS
  'Registrars whose prices are tracked, by slug (porkbun). Ingestion adds unknown slugs; operators set name and website.';

-- -----------------------------------------------------------------------------
-- Price history
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.tld_prices (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tld            text NOT NULL REFERENCES pounce.tlds,
  registrar      text NOT NULL REFERENCES pounce.registrars ON UPDATE CASCADE,
  kind           text NOT NULL CHECK (kind IN ('registration', 'renewal', 'transfer', 'restore')),
  price          numeric(12,2) CHECK (price >= 0),
  currency       text REFERENCES pounce.currencies,
  promo          boolean NOT NULL DEFAULT false,
  promo_terms    text CHECK (promo_terms ~ '^[a-z][a-z0-9_]*$'),
  regular_price  numeric(12,2) CHECK (regular_price >= 0),
  observed_at    timestamptz NOT NULL,
  last_seen_at   timestamptz NOT NULL,
  source         text NOT NULL,
  CONSTRAINT tld_prices_withdrawn_has_no_currency CHECK ((price IS NULL) = (currency IS NULL)),
  CONSTRAINT tld_prices_promo_terms_need_promo
    CHECK (promo OR (promo_terms IS NULL AND regular_price IS NULL)),
  CONSTRAINT tld_prices_withdrawn_has_no_promo CHECK (price IS NOT NULL OR NOT promo),
  CONSTRAINT tld_prices_seen_after_observed CHECK (last_seen_at >= observed_at),
  -- Latest price of an offer: a backward scan that stops after one row. History of an
  -- offer over a range: a range scan. Change detection from the start: an index-only
  -- scan in offer order (the INCLUDEd columns are what LAG reads), no sort.
  CONSTRAINT tld_prices_offer_history UNIQUE (tld, registrar, kind, observed_at) INCLUDE (id, price, currency)
) WITH (fillfactor = 90);  -- room for HOT updates of last_seen_at on the current rows
COMMENT ON TABLE pounce.tld_prices IS
  'Price history per offer (tld, registrar, kind): a row per distinct price; NULL price = offer withdrawn.';
COMMENT ON COLUMN pounce.tld_prices.price IS
  'What the buyer pays now for one year, promotion applied; NULL when the offer was withdrawn.';
COMMENT ON COLUMN pounce.tld_prices.promo_terms IS
  'How a promotion applies: first_year_only (the regular price from the second year), or another slug.';
COMMENT ON COLUMN pounce.tld_prices.regular_price IS 'The price without the promotion, when the source says.';
COMMENT ON COLUMN pounce.tld_prices.observed_at IS 'First observation of this price.';
COMMENT ON COLUMN pounce.tld_prices.last_seen_at IS 'Latest observation of this price (moved by unchanged observations).';

-- The gate and watermark of change detection (one row). See the header of this file.
CREATE TABLE pounce.price_change_watermark (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  last_price_id  bigint NOT NULL DEFAULT 0 CHECK (last_price_id >= 0),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pounce.price_change_watermark DEFAULT VALUES;
COMMENT ON TABLE pounce.price_change_watermark IS
  'tld_prices.id up to which price changes were detected. Ingestion holds the row FOR SHARE, detection FOR UPDATE.';

-- -----------------------------------------------------------------------------
-- Ingestion
-- -----------------------------------------------------------------------------
-- ingest_tld_prices(source, rows, complete): stores a batch of price observations.
-- rows: a JSON array of {"tld", "kind", "price" (string or number), "currency",
-- optional "registrar" (default: source), "promo", "promo_terms", "regular_price",
-- "observed_at" (default: now())}.
-- complete: the batch is the registrars' whole price list, so an offer of theirs that
-- is missing from it was withdrawn (a NULL-price row records that).
-- Refused rows are logged with source 'tld_prices:<source>'.
-- Returns the counts of the contract: inserted (rows that stored a new price),
-- updated (unchanged prices whose last_seen_at moved), unchanged (nothing to do: an
-- observation already known), rejected (into pounce.ingest_rejects with the reason),
-- and withdrawn (offers recorded as withdrawn by a complete batch).
CREATE FUNCTION collector.ingest_tld_prices(source text, rows jsonb, complete boolean DEFAULT false,
                                            OUT inserted integer, OUT updated integer, OUT unchanged integer,
                                            OUT rejected integer, OUT withdrawn integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  IF source IS NULL OR source !~ '^[a-z0-9][a-z0-9._-]*$' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('invalid source name %L', source),
      HINT = 'a source is a lower-case slug such as porkbun';
  END IF;
  IF jsonb_typeof(rows) IS DISTINCT FROM 'array' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'rows must be a JSON array of price observations';
  END IF;

  -- The gate (see the file header): held until this transaction ends.
  PERFORM FROM pounce.price_change_watermark FOR SHARE;
  -- One ingestion per registrar at a time, so two deliveries of one price list cannot
  -- both append the same change. Locks are taken in a fixed order (no deadlock).
  PERFORM pg_advisory_xact_lock(hashtext('pounce.tld_prices'), hashtext(r.registrar))
  FROM (SELECT DISTINCT lower(btrim(coalesce(e ->> 'registrar', source))) AS registrar
        FROM jsonb_array_elements(rows) AS e ORDER BY 1) AS r;

  WITH input AS (
    SELECT e.ord, e.raw,
           pounce.idna_to_ascii(lower(ltrim(btrim(e.raw ->> 'tld'), '.'))) AS tld,
           lower(btrim(coalesce(e.raw ->> 'registrar', source))) AS registrar,
           lower(btrim(e.raw ->> 'kind')) AS kind,
           btrim(e.raw ->> 'price') AS price_text,
           upper(btrim(e.raw ->> 'currency')) AS currency,
           e.raw -> 'promo' AS promo_json,
           lower(btrim(e.raw ->> 'promo_terms')) AS promo_terms,
           btrim(e.raw ->> 'regular_price') AS regular_text,
           e.raw ->> 'observed_at' AS observed_text,
           CASE WHEN e.raw ? 'observed_at' THEN pounce.try_timestamptz(e.raw ->> 'observed_at')
                ELSE now() END AS observed_at
    FROM jsonb_array_elements(rows) WITH ORDINALITY AS e(raw, ord)
  ),
  checked AS (
    SELECT i.*,
      CASE
        WHEN jsonb_typeof(i.raw) <> 'object' THEN 'not a JSON object'
        WHEN i.tld IS NULL OR i.tld = '' THEN 'missing tld'
        WHEN NOT EXISTS (SELECT FROM pounce.tlds AS t WHERE t.tld = i.tld) THEN format('unknown TLD "%s"', i.tld)
        WHEN i.registrar !~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'
          THEN format('invalid registrar "%s" (expected a slug such as porkbun)', i.registrar)
        WHEN i.kind IS NULL THEN 'missing kind'
        WHEN i.kind NOT IN ('registration', 'renewal', 'transfer', 'restore')
          THEN format('unknown kind "%s" (expected registration, renewal, transfer or restore)', i.kind)
        WHEN i.price_text IS NULL THEN 'missing price'
        WHEN i.price_text !~ '^-?[0-9]{1,12}(\.[0-9]{1,6})?$' THEN format('unparseable price "%s"', i.price_text)
        WHEN i.price_text::numeric < 0 THEN format('negative price %s', i.price_text)
        WHEN round(i.price_text::numeric, 2) >= 1e10 THEN format('price %s out of range', i.price_text)
        WHEN i.currency IS NULL THEN 'missing currency'
        WHEN NOT EXISTS (SELECT FROM pounce.currencies AS c WHERE c.code = i.currency)
          THEN format('unknown currency "%s"', i.currency)
        WHEN i.observed_at IS NULL THEN format('unparseable observed_at "%s"', i.observed_text)
        WHEN i.observed_at > now() + interval '5 minutes' THEN format('observed_at %s is in the future', i.observed_text)
        WHEN i.promo_json IS NOT NULL AND jsonb_typeof(i.promo_json) NOT IN ('boolean', 'null')
          THEN 'promo must be true or false'
        WHEN i.promo_terms IS NOT NULL AND i.promo_terms !~ '^[a-z][a-z0-9_]*$'
          THEN format('invalid promo_terms "%s"', i.promo_terms)
        WHEN i.regular_text IS NOT NULL AND i.regular_text !~ '^[0-9]{1,10}(\.[0-9]{1,6})?$'
          THEN format('unparseable regular_price "%s"', i.regular_text)
        WHEN (i.promo_terms IS NOT NULL OR i.regular_text IS NOT NULL) AND i.promo_json IS DISTINCT FROM 'true'
          THEN 'promo_terms and regular_price need "promo": true'
      END AS reason
    FROM input AS i
  ),
  typed AS (
    SELECT c.ord, c.tld, c.registrar, c.kind,
           round(c.price_text::numeric, 2) AS price, c.currency,
           coalesce(c.promo_json = 'true', false) AS promo, c.promo_terms,
           round(c.regular_text::numeric, 2) AS regular_price, c.observed_at,
           -- two observations of one offer at one time: the first counts
           row_number() OVER (PARTITION BY c.tld, c.registrar, c.kind, c.observed_at ORDER BY c.ord) AS nth
    FROM checked AS c
    WHERE c.reason IS NULL
  ),
  refused AS (
    SELECT c.ord, c.raw, c.reason FROM checked AS c WHERE c.reason IS NOT NULL
    UNION ALL
    SELECT t.ord, c.raw, 'duplicate observation of this offer at this time in the batch'
    FROM typed AS t JOIN checked AS c USING (ord)
    WHERE t.nth > 1
  ),
  valid AS (
    SELECT t.*, ROW(t.price, t.currency, t.promo, t.promo_terms, t.regular_price) AS val
    FROM typed AS t WHERE t.nth = 1
  ),
  -- The stored current row of every offer in the batch.
  offers AS (
    SELECT o.tld, o.registrar, o.kind, cur.id AS cur_id, cur.last_seen_at AS cur_last_seen,
           ROW(cur.price, cur.currency, cur.promo, cur.promo_terms, cur.regular_price) AS cur_val
    FROM (SELECT DISTINCT tld, registrar, kind FROM valid) AS o
    LEFT JOIN LATERAL (
      SELECT p.id, p.price, p.currency, p.promo, p.promo_terms, p.regular_price, p.last_seen_at
      FROM pounce.tld_prices AS p
      WHERE p.tld = o.tld AND p.registrar = o.registrar AND p.kind = o.kind
      ORDER BY p.observed_at DESC
      LIMIT 1) AS cur ON true
  ),
  -- Observations no later than what is stored: known already if they agree with the
  -- price stored for that time, refused otherwise (history is only appended).
  known AS (
    SELECT v.ord, coalesce(then_.val IS NOT DISTINCT FROM v.val, false) AS agrees
    FROM valid AS v
    JOIN offers AS o USING (tld, registrar, kind)
    LEFT JOIN LATERAL (
      SELECT ROW(p.price, p.currency, p.promo, p.promo_terms, p.regular_price) AS val
      FROM pounce.tld_prices AS p
      WHERE p.tld = v.tld AND p.registrar = v.registrar AND p.kind = v.kind AND p.observed_at <= v.observed_at
      ORDER BY p.observed_at DESC
      LIMIT 1) AS then_ ON true
    WHERE v.observed_at <= o.cur_last_seen
  ),
  -- Newer observations, in time order per offer: a change starts a run of equal
  -- prices; run 0 continues the stored current row.
  fresh AS (
    SELECT v.*, o.cur_id,
           v.val IS DISTINCT FROM coalesce(lag(v.val) OVER w, o.cur_val) AS is_change
    FROM valid AS v
    JOIN offers AS o USING (tld, registrar, kind)
    WHERE o.cur_last_seen IS NULL OR v.observed_at > o.cur_last_seen
    WINDOW w AS (PARTITION BY v.tld, v.registrar, v.kind ORDER BY v.observed_at)
  ),
  runs AS (
    SELECT f.*,
           count(*) FILTER (WHERE f.is_change) OVER w AS run
    FROM fresh AS f
    WINDOW w AS (PARTITION BY f.tld, f.registrar, f.kind ORDER BY f.observed_at)
  ),
  new_registrars AS (
    INSERT INTO pounce.registrars (registrar, name)
    SELECT DISTINCT registrar, registrar FROM runs WHERE is_change
    ON CONFLICT (registrar) DO NOTHING
  ),
  appended AS (
    INSERT INTO pounce.tld_prices (tld, registrar, kind, price, currency, promo, promo_terms, regular_price,
                                   observed_at, last_seen_at, source)
    SELECT DISTINCT ON (r.tld, r.registrar, r.kind, r.run)
           r.tld, r.registrar, r.kind, r.price, r.currency, r.promo, r.promo_terms, r.regular_price,
           r.observed_at, max(r.observed_at) OVER (PARTITION BY r.tld, r.registrar, r.kind, r.run), source
    FROM runs AS r
    WHERE r.run > 0
    ORDER BY r.tld, r.registrar, r.kind, r.run, r.observed_at
    RETURNING 1
  ),
  seen AS (
    UPDATE pounce.tld_prices AS p
    SET last_seen_at = s.last_seen
    FROM (SELECT cur_id, max(observed_at) AS last_seen FROM runs WHERE run = 0 GROUP BY cur_id) AS s
    WHERE p.id = s.cur_id AND p.last_seen_at < s.last_seen
  ),
  -- complete: offers of the batch's registrars that the batch does not mention and that
  -- are offered now are withdrawn, as of the batch's latest observation. Every TLD and
  -- kind of the registrar is probed through the offer index (no scan of the history).
  -- Offers mentioned by refused rows are not withdrawn: they exist, their row was bad.
  mentioned AS (
    SELECT DISTINCT tld, registrar, kind FROM checked
    WHERE tld IS NOT NULL AND kind IS NOT NULL
  ),
  gone AS (
    INSERT INTO pounce.tld_prices (tld, registrar, kind, price, currency, observed_at, last_seen_at, source)
    SELECT t.tld, r.registrar, k.kind, NULL, NULL, r.as_of, r.as_of, source
    FROM (SELECT registrar, max(observed_at) AS as_of FROM valid GROUP BY registrar) AS r
    CROSS JOIN pounce.tlds AS t
    CROSS JOIN (VALUES ('registration'), ('renewal'), ('transfer'), ('restore')) AS k(kind)
    CROSS JOIN LATERAL (
      SELECT p.price, p.observed_at
      FROM pounce.tld_prices AS p
      WHERE p.tld = t.tld AND p.registrar = r.registrar AND p.kind = k.kind
      ORDER BY p.observed_at DESC
      LIMIT 1) AS cur
    WHERE complete
      AND cur.price IS NOT NULL
      AND cur.observed_at < r.as_of
      AND NOT EXISTS (SELECT FROM mentioned AS m
                      WHERE (m.tld, m.registrar, m.kind) = (t.tld, r.registrar, k.kind))
    RETURNING 1
  ),
  logged AS (
    INSERT INTO pounce.ingest_rejects (source, reason, raw)
    SELECT 'tld_prices:' || source, f.reason, f.raw FROM refused AS f ORDER BY f.ord
    RETURNING 1
  ),
  stale AS (
    INSERT INTO pounce.ingest_rejects (source, reason, raw)
    SELECT 'tld_prices:' || source, 'older than the stored history of this offer and disagrees with it', c.raw
    FROM known AS k JOIN checked AS c USING (ord)
    WHERE NOT k.agrees
    ORDER BY k.ord
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM runs WHERE is_change),
         (SELECT count(*) FROM runs WHERE NOT is_change),
         (SELECT count(*) FROM known WHERE agrees),
         (SELECT count(*) FROM logged) + (SELECT count(*) FROM stale),
         (SELECT count(*) FROM gone)
  INTO inserted, updated, unchanged, rejected, withdrawn;
END $$;
COMMENT ON FUNCTION collector.ingest_tld_prices(text, jsonb, boolean) IS
  'Stores registrar price observations (a JSON array); returns inserted, updated, unchanged, rejected, withdrawn.';
GRANT EXECUTE ON FUNCTION collector.ingest_tld_prices(text, jsonb, boolean) TO collector;

-- ---- sql/tld/changes.sql ----
-- =============================================================================
-- TLD price changes: LAG-based detection, the change log, price alerts
-- =============================================================================
-- The original ran one query per (TLD, registrar) pair for its last two prices. Here one
-- window query over the new history rows (and the row before each) yields every change
-- since the watermark; the pg_cron job appends them to pounce.price_changes, fans them
-- out to subscribers and advances the watermark, all in one transaction.

-- -----------------------------------------------------------------------------
-- The change log
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.price_changes (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  price_id      bigint NOT NULL UNIQUE REFERENCES pounce.tld_prices ON DELETE CASCADE,  -- the new price: one event each
  tld           text NOT NULL,
  registrar     text NOT NULL,
  kind          text NOT NULL,
  old_price     numeric(12,2),
  old_currency  text,
  new_price     numeric(12,2),
  new_currency  text,
  change        numeric(12,2),
  change_pct    numeric(10,2),
  direction     text NOT NULL CHECK (direction IN ('up', 'down', 'added', 'withdrawn', 'changed')),
  observed_at   timestamptz NOT NULL,
  detected_at   timestamptz NOT NULL DEFAULT now()
);
-- Recent changes (api.price_changes's default order) and per-TLD recent changes.
CREATE INDEX price_changes_recent ON pounce.price_changes (observed_at DESC, id DESC);
CREATE INDEX price_changes_tld_recent ON pounce.price_changes (tld, observed_at DESC);
COMMENT ON TABLE pounce.price_changes IS
  'Detected price changes of offers, one per new price row (old -> new, absolute and percent change, direction).';
COMMENT ON COLUMN pounce.price_changes.change IS
  'new_price - old_price in new_currency (the old price converted through usd_rate when the currency changed).';
COMMENT ON COLUMN pounce.price_changes.direction IS
  'up, down, added (new offer or re-offered), withdrawn, or changed (currency changed, no rate to compare).';

-- price_change_events(after_id, through_id): the changes that the history rows with
-- after_id < id <= through_id record, computed with LAG over each offer's history in
-- time order. Rows whose price and currency equal their predecessor's (only the
-- promotion changed) are no price change and yield nothing.
-- Two sources feed the one window, and only one of them runs (the other's one-time
-- filter is false): from the start (after_id = 0), the whole history in the order of
-- tld_prices_offer_history, an index-only scan with no sort; after a watermark, the new
-- rows plus each of their offers' latest row at or below after_id (one index probe per
-- offer), sorted (a day is some thousands of rows).
-- jit is off: the planner prices the rate look-ups of a currency change as if every row
-- made them, and JIT compilation of that estimate took longer than a day's detection.
CREATE FUNCTION pounce.price_change_events(after_id bigint, through_id bigint)
RETURNS TABLE (price_id bigint, tld text, registrar text, kind text,
               old_price numeric, old_currency text, new_price numeric, new_currency text,
               change numeric, change_pct numeric, direction text, observed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
SET jit = off
BEGIN ATOMIC
  WITH fresh AS (
    SELECT p.id, p.tld, p.registrar, p.kind, p.price, p.currency, p.observed_at
    FROM pounce.tld_prices AS p
    WHERE p.id > price_change_events.after_id AND p.id <= price_change_events.through_id
      AND price_change_events.after_id > 0
  ),
  before AS (
    SELECT b.id, b.tld, b.registrar, b.kind, b.price, b.currency, b.observed_at
    FROM (SELECT DISTINCT f.tld, f.registrar, f.kind FROM fresh AS f) AS o
    CROSS JOIN LATERAL (
      SELECT p.id, p.tld, p.registrar, p.kind, p.price, p.currency, p.observed_at
      FROM pounce.tld_prices AS p
      WHERE p.tld = o.tld AND p.registrar = o.registrar AND p.kind = o.kind
        AND p.id <= price_change_events.after_id
      ORDER BY p.observed_at DESC
      LIMIT 1) AS b
  ),
  history AS (
    SELECT p.id, p.tld, p.registrar, p.kind, p.price, p.currency, p.observed_at,
           lag(p.id) OVER w AS prev_id, lag(p.price) OVER w AS prev_price, lag(p.currency) OVER w AS prev_currency
    FROM pounce.tld_prices AS p
    WHERE price_change_events.after_id = 0 AND p.id <= price_change_events.through_id
    WINDOW w AS (PARTITION BY p.tld, p.registrar, p.kind ORDER BY p.observed_at)
    UNION ALL
    SELECT h.id, h.tld, h.registrar, h.kind, h.price, h.currency, h.observed_at,
           lag(h.id) OVER w, lag(h.price) OVER w, lag(h.currency) OVER w
    FROM (SELECT * FROM fresh UNION ALL SELECT * FROM before) AS h
    WINDOW w AS (PARTITION BY h.tld, h.registrar, h.kind ORDER BY h.observed_at)
  ),
  compared AS (
    SELECT h.*,
           -- the old price in the new currency (NULL when a rate is missing)
           CASE WHEN h.prev_currency IS NULL OR h.currency IS NULL OR h.prev_currency = h.currency THEN h.prev_price
                ELSE round(h.prev_price * (SELECT c.usd_rate FROM pounce.currencies AS c WHERE c.code = h.prev_currency)
                           / (SELECT c.usd_rate FROM pounce.currencies AS c WHERE c.code = h.currency), 2)
           END AS prev_in_new
    FROM history AS h
    WHERE h.id > price_change_events.after_id
      AND (h.prev_id IS NULL OR h.price IS DISTINCT FROM h.prev_price OR h.currency IS DISTINCT FROM h.prev_currency)
  )
  SELECT c.id, c.tld, c.registrar, c.kind, c.prev_price, c.prev_currency, c.price, c.currency,
         c.price - c.prev_in_new,
         round(100 * (c.price - c.prev_in_new) / nullif(c.prev_in_new, 0), 2),
         CASE WHEN c.prev_price IS NULL THEN 'added'
              WHEN c.price IS NULL THEN 'withdrawn'
              WHEN c.prev_in_new IS NULL THEN 'changed'
              WHEN c.price > c.prev_in_new THEN 'up'
              WHEN c.price < c.prev_in_new THEN 'down'
              ELSE 'changed' END,
         c.observed_at
  FROM compared AS c;
END;
COMMENT ON FUNCTION pounce.price_change_events(bigint, bigint) IS
  'Price change events (LAG over each offer''s history) of the tld_prices rows with after_id < id <= through_id.';

-- -----------------------------------------------------------------------------
-- Price alerts
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.tld_price_alerts (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id         uuid NOT NULL DEFAULT pounce.current_user_id() REFERENCES pounce.users ON DELETE CASCADE,
  tld             text NOT NULL REFERENCES pounce.tlds ON DELETE CASCADE,
  registrar       text REFERENCES pounce.registrars ON UPDATE CASCADE ON DELETE CASCADE,
  kind            text CHECK (kind IN ('registration', 'renewal', 'transfer', 'restore')),
  direction       text NOT NULL DEFAULT 'any' CHECK (direction IN ('up', 'down', 'any')),
  min_change_pct  numeric(6,2) NOT NULL DEFAULT 0 CHECK (min_change_pct >= 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tld_price_alerts_once UNIQUE NULLS NOT DISTINCT (user_id, tld, registrar, kind, direction)
);
-- Fan-out: the changes of a TLD meet its subscriptions.
CREATE INDEX tld_price_alerts_tld ON pounce.tld_price_alerts (tld);
COMMENT ON TABLE pounce.tld_price_alerts IS
  'Members'' price alerts: a TLD, optionally one registrar and kind, a direction and a minimum percent change.';

ALTER TABLE pounce.tld_price_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.tld_price_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tld_price_alerts_own ON pounce.tld_price_alerts TO member
  USING (user_id = pounce.current_user_id())
  WITH CHECK (user_id = pounce.current_user_id());
CREATE POLICY tld_price_alerts_internal ON pounce.tld_price_alerts TO pounce_owner USING (true) WITH CHECK (true);

-- tld_price_alert_check(): before an alert is stored, normalise its TLD as parse_domain
-- does (".COM" -> com, IDN -> xn--) and hold its owner to the plan's alert limit.
-- SECURITY DEFINER: it reads the owner's plan and counts their alerts whoever inserts;
-- the advisory lock serialises two concurrent inserts of one member.
CREATE FUNCTION pounce.tld_price_alert_check() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  alert_limit integer;
BEGIN
  NEW.tld := pounce.idna_to_ascii(lower(ltrim(btrim(NEW.tld), '.')));
  NEW.registrar := lower(btrim(NEW.registrar));
  PERFORM pg_advisory_xact_lock(hashtext('pounce.tld_price_alerts'), hashtext(NEW.user_id::text));
  SELECT t.tld_price_alert_limit INTO alert_limit
  FROM pounce.users AS u JOIN pounce.tiers AS t USING (tier)
  WHERE u.id = NEW.user_id;
  IF (SELECT count(*) FROM pounce.tld_price_alerts AS a WHERE a.user_id = NEW.user_id) >= alert_limit THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001',
      MESSAGE = format('your plan allows %s price alerts', alert_limit),
      HINT = 'delete an alert or upgrade your plan';
  END IF;
  RETURN NEW;
END $$;
COMMENT ON FUNCTION pounce.tld_price_alert_check() IS
  'Trigger: normalises an alert''s TLD and enforces the plan''s tld_price_alert_limit.';
CREATE TRIGGER tld_price_alert_check BEFORE INSERT ON pounce.tld_price_alerts
  FOR EACH ROW EXECUTE FUNCTION pounce.tld_price_alert_check();

GRANT SELECT, DELETE ON pounce.tld_price_alerts TO member;
GRANT INSERT (tld, registrar, kind, direction, min_change_pct) ON pounce.tld_price_alerts TO member;
GRANT UPDATE (direction, min_change_pct) ON pounce.tld_price_alerts TO member;

CREATE VIEW api.tld_price_alerts WITH (security_invoker = true) AS
SELECT id, tld, registrar, kind, direction, min_change_pct, created_at
FROM pounce.tld_price_alerts;
COMMENT ON VIEW api.tld_price_alerts IS
  'Your TLD price alerts. POST {"tld": "com", "registrar": null, "kind": "renewal", "direction": "up", '
  '"min_change_pct": 5} (registrar and kind optional: any); PATCH direction or min_change_pct; DELETE. '
  'A change fans out one notification (kind tld.price_change) per member and change. '
  'Errors: 409 unknown TLD or registrar or a duplicate alert, 400 plan limit reached.';
GRANT SELECT, DELETE ON api.tld_price_alerts TO member;
GRANT INSERT (tld, registrar, kind, direction, min_change_pct) ON api.tld_price_alerts TO member;
GRANT UPDATE (direction, min_change_pct) ON api.tld_price_alerts TO member;

-- -----------------------------------------------------------------------------
-- The job: detect, log, notify, advance the watermark
-- -----------------------------------------------------------------------------
-- detect_price_changes(): appends the changes since the watermark to price_changes,
-- notifies every member with a matching alert once per change, and moves the
-- watermark, in one transaction: a failure anywhere leaves everything as it was.
-- FOR UPDATE on the watermark row waits for ingestions in flight (they hold it FOR
-- SHARE) and for another run of this job, which then starts from the new watermark.
-- At most batch_rows history rows are read per run (the watermark then stands at the
-- last of them and the next run goes on), so a backlog never makes one long transaction.
-- Returns how many changes and notifications it added.
CREATE FUNCTION pounce.detect_price_changes(batch_rows bigint DEFAULT 200000,
                                            OUT changes bigint, OUT notifications bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  from_id bigint;
  through_id bigint;
BEGIN
  -- Each statement below must see what committed before the lock was granted.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '25001',
      MESSAGE = 'detect_price_changes() needs READ COMMITTED isolation';
  END IF;
  SELECT w.last_price_id INTO from_id FROM pounce.price_change_watermark AS w FOR UPDATE;
  SELECT least(coalesce(max(p.id), from_id), from_id + batch_rows) INTO through_id FROM pounce.tld_prices AS p;

  WITH events AS (
    INSERT INTO pounce.price_changes (price_id, tld, registrar, kind, old_price, old_currency, new_price,
                                      new_currency, change, change_pct, direction, observed_at)
    SELECT e.price_id, e.tld, e.registrar, e.kind, e.old_price, e.old_currency, e.new_price,
           e.new_currency, e.change, e.change_pct, e.direction, e.observed_at
    FROM pounce.price_change_events(from_id, through_id) AS e
    ON CONFLICT (price_id) DO NOTHING
    RETURNING *
  ),
  -- Alerts are about prices going up or down; new and withdrawn offers are in the log.
  -- Only changes observed in the last week are news: a backfill of old history (or the
  -- first run over it) logs its changes without flooding members with the past.
  fanout AS (
    INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key)
    SELECT DISTINCT ON (a.user_id, e.id)
           a.user_id, 'tld.price_change',
           jsonb_build_object('tld', e.tld, 'registrar', e.registrar, 'kind', e.kind,
                              'old_price', e.old_price, 'new_price', e.new_price, 'currency', e.new_currency,
                              'old_currency', e.old_currency, 'change', e.change, 'change_pct', e.change_pct,
                              'direction', e.direction, 'observed_at', e.observed_at, 'price_change_id', e.id),
           'price_change:' || e.id
    FROM events AS e
    JOIN pounce.tld_price_alerts AS a
      ON a.tld = e.tld
     AND (a.registrar IS NULL OR a.registrar = e.registrar)
     AND (a.kind IS NULL OR a.kind = e.kind)
     AND a.direction IN ('any', e.direction)
     AND coalesce(abs(e.change_pct) >= a.min_change_pct, true)  -- from a price of 0: any percent
    JOIN pounce.users AS u ON u.id = a.user_id AND NOT u.disabled
    WHERE e.direction IN ('up', 'down') AND e.observed_at > now() - interval '7 days'
    ORDER BY a.user_id, e.id
    ON CONFLICT (user_id, kind, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM fanout) INTO changes, notifications;

  UPDATE pounce.price_change_watermark SET last_price_id = through_id, updated_at = now()
  WHERE last_price_id <> through_id;
END $$;
COMMENT ON FUNCTION pounce.detect_price_changes(bigint) IS
  'pg_cron: appends price changes since the watermark, notifies subscribers, advances the watermark (atomic).';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.detect_price_changes', '*/5 * * * *', 'SELECT pounce.detect_price_changes()',
   'append TLD price changes since the watermark and notify the members who subscribed to them');

CREATE VIEW api.price_changes WITH (security_invoker = true) AS
SELECT id, tld, registrar, kind, old_price, old_currency, new_price, new_currency, change, change_pct,
       direction, observed_at, detected_at
FROM pounce.price_changes;
COMMENT ON VIEW api.price_changes IS
  'Recent registrar price changes, newest first with order=observed_at.desc; filter by tld, registrar, kind, '
  'direction (up, down, added, withdrawn, changed), change_pct and observed_at.';
GRANT SELECT ON pounce.price_changes TO anon, member;
GRANT SELECT ON api.price_changes TO anon, member;

-- ---- sql/tld/intel.sql ----
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

-- ---- sql/tld/intel.sql: the market's valuation reads registration costs from here ----
-- registration_cost_usd(tld): the cheapest first-year registration price of a TLD in
-- USD, from the intel view; NULL where no registrar's price is known. The market's
-- valuation starts a name's prior from it (sql/market/valuation.sql). A multi-label
-- suffix (co.uk) counts as its TLD (uk), as everywhere in this file.
CREATE OR REPLACE FUNCTION pounce.registration_cost_usd(tld text)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT i.cheapest_registration_usd FROM pounce.tld_intel AS i
  WHERE i.tld = split_part(registration_cost_usd.tld, '.', -1);
END;
COMMENT ON FUNCTION pounce.registration_cost_usd(text) IS
  'Cheapest known first-year registration price of a TLD in USD (NULL when unknown).';
