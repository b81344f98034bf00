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
