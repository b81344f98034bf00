-- =============================================================================
-- Market: auctions scraped from aftermarket platforms
-- =============================================================================

-- Auctions and listings draw ids from one sequence, so an id names one market item
-- whatever its kind: the feed's keyset cursor is (sort key, id) over both tables.
CREATE SEQUENCE pounce.market_item_ids AS bigint;
COMMENT ON SEQUENCE pounce.market_item_ids IS 'Ids of auctions and listings (one space: a feed cursor needs no kind).';

-- ---- Parsing helpers for ingestion (never raise: a bad row becomes a reject) ----
-- (domains: pounce.try_parse_domain, sql/core/domains.sql)

-- parse_price: a price given as a JSON number or a string such as "1234.5", "$1,234"
-- or "1,234.00 USD" (thousands separators only in groups of three). NULL when the
-- value is not a price (e.g. "$1,2x4"); a sign is kept so the caller can say "negative".
CREATE FUNCTION pounce.parse_price(value jsonb)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN (
  SELECT CASE
    WHEN jsonb_typeof(value) = 'number' THEN value::numeric
    WHEN jsonb_typeof(value) = 'string' AND s ~ '^-?\$?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$'
      THEN replace(replace(s, '$', ''), ',', '')::numeric
  END
  FROM (SELECT regexp_replace(btrim(value #>> '{}'), '\s*[A-Za-z]{3}$', '') AS s) AS t);
COMMENT ON FUNCTION pounce.parse_price(jsonb) IS 'A price from a JSON number or a "$1,234.50"-style string; NULL when unparseable.';

-- ---- Table -----------------------------------------------------------------

CREATE TABLE pounce.auctions (
  id             bigint PRIMARY KEY DEFAULT nextval('pounce.market_item_ids'),
  platform       text NOT NULL CHECK (platform ~ '^[a-z0-9][a-z0-9_.-]{0,39}$'),
  platform_id    text NOT NULL CHECK (platform_id <> '' AND length(platform_id) <= 200),
  domain         text NOT NULL,
  sld            text NOT NULL,
  tld            text NOT NULL,
  auction_type   text NOT NULL CHECK (auction_type IN ('bid', 'buy_now')),
  current_price  numeric(14, 2) NOT NULL CHECK (current_price >= 0),
  currency       text NOT NULL REFERENCES pounce.currencies,
  price_usd      numeric(14, 2) NOT NULL CHECK (price_usd >= 0),
  bids           integer NOT NULL DEFAULT 0 CHECK (bids >= 0),
  end_time       timestamptz CHECK (end_time IS NOT NULL OR auction_type = 'buy_now'),
  url            text CHECK (url ~ '^https?://'),
  status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended', 'sold')),
  first_seen     timestamptz NOT NULL DEFAULT now(),
  last_seen      timestamptz NOT NULL DEFAULT now(),
  -- when price, bids, end time, type, url or status last changed (alert matching)
  updated_at     timestamptz NOT NULL DEFAULT now(),
  word_quality   smallint NOT NULL DEFAULT 0,
  est_value      numeric(14, 2) CHECK (est_value >= 0),
  valued_at      timestamptz,
  sld_length     smallint NOT NULL GENERATED ALWAYS AS (length(sld)) STORED,
  has_digit      boolean NOT NULL GENERATED ALWAYS AS (sld ~ '[0-9]') STORED,
  has_hyphen     boolean NOT NULL GENERATED ALWAYS AS (strpos(sld, '-') > 0) STORED,
  pounce_score   smallint NOT NULL GENERATED ALWAYS AS (
                   pounce.pounce_score(sld, tld, word_quality, bids, price_usd, est_value)) STORED,
  UNIQUE (platform, platform_id),
  CHECK (domain = sld || '.' || tld)
) WITH (fillfactor = 85);  -- room for HOT updates: most re-seen auctions change only last_seen
COMMENT ON TABLE pounce.auctions IS
  'Aftermarket auctions, one row per (platform, platform_id); written by collector.ingest_auctions().';
COMMENT ON COLUMN pounce.auctions.domain IS 'Registrable domain in ASCII form (pounce.parse_domain).';
COMMENT ON COLUMN pounce.auctions.price_usd IS 'current_price in USD (pounce.currencies rate), for filters and sorts.';
COMMENT ON COLUMN pounce.auctions.last_seen IS 'When a batch last contained the auction; finish_snapshot() ends the unseen.';
COMMENT ON COLUMN pounce.auctions.word_quality IS 'pounce.word_quality(sld), set by a trigger when the name is written.';
COMMENT ON COLUMN pounce.auctions.est_value IS 'Estimated value in USD, precomputed by pounce.value_market_items().';

-- market_item_derive: what follows from a row and a lookup (dictionary, exchange
-- rate), for every writer. Shared by auctions and listings (same column names).
-- SECURITY DEFINER: a member's listing insert reads the dictionary and the rates.
CREATE FUNCTION pounce.market_item_derive()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    price numeric;
BEGIN
    -- (PL/pgSQL resolves a field only when its statement runs, so each table's branch
    -- names its own column)
    IF TG_TABLE_NAME = 'auctions' THEN
        price := NEW.current_price;
    ELSE
        price := NEW.asking_price;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.sld IS DISTINCT FROM OLD.sld THEN
        NEW.word_quality := pounce.word_quality(NEW.sld);
    END IF;
    NEW.price_usd := pounce.to_usd(price, NEW.currency);
    IF NEW.price_usd IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('no exchange rate for currency %s', NEW.currency),
            HINT = 'Set pounce.currencies.usd_rate for it, or give the price in USD.';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION pounce.market_item_derive() IS 'Trigger: word_quality and price_usd of an auction or listing.';

CREATE TRIGGER auctions_derive_insert BEFORE INSERT ON pounce.auctions
  FOR EACH ROW EXECUTE FUNCTION pounce.market_item_derive();
-- only when an input changed: a re-seen auction costs no lookup
CREATE TRIGGER auctions_derive_update BEFORE UPDATE ON pounce.auctions
  FOR EACH ROW
  WHEN ((OLD.sld, OLD.current_price, OLD.currency) IS DISTINCT FROM (NEW.sld, NEW.current_price, NEW.currency))
  EXECUTE FUNCTION pounce.market_item_derive();

-- Feed indexes: one per sort over the active rows, each ending in id (the keyset
-- tie-breaker); filters narrow these scans or use the trigram and TLD indexes. All
-- ascending: descending sorts scan them backward, and only then does a keyset
-- condition such as (pounce_score, id) < (61, 8812) position the scan at the cursor
-- (on a DESC index PostgreSQL 15 starts at the top and filters its way down).
CREATE INDEX auctions_feed_score ON pounce.auctions (pounce_score, id) WHERE status = 'active';
CREATE INDEX auctions_feed_price ON pounce.auctions (price_usd, id) WHERE status = 'active';
CREATE INDEX auctions_feed_ending ON pounce.auctions (end_time, id) WHERE status = 'active';
CREATE INDEX auctions_feed_newest ON pounce.auctions (first_seen, id) WHERE status = 'active';
CREATE INDEX auctions_feed_tld ON pounce.auctions (tld, pounce_score, id) WHERE status = 'active';
CREATE INDEX auctions_sld_trgm ON pounce.auctions USING gin (sld gin_trgm_ops) WHERE status = 'active';
-- the valuation backlog. (finish_snapshot uses the (platform, platform_id) key; a
-- per-platform index on last_seen would make every re-seen auction's update non-HOT,
-- rewriting all of the row's index entries. Every index here costs each ingested row.)
CREATE INDEX auctions_valuation ON pounce.auctions (valued_at NULLS FIRST, id) WHERE status = 'active';
-- names: similar_domains and lookups of one domain (score_breakdown, valuation)
CREATE INDEX auctions_sld ON pounce.auctions (sld) WHERE status = 'active';

-- ---- Ingestion ---------------------------------------------------------------

-- ingest_auctions(platform, rows): upserts a batch of one platform's auctions.
-- rows: [{"id", "domain", "type": "bid"|"buy_now", "price", "currency" (default USD),
--         "bids", "end_time", "url"}, ...]. Returns the counts of the ingestion
-- contract; invalid rows go to pounce.ingest_rejects (source 'auctions:<platform>')
-- with the first reason that applies. An auction seen again only has last_seen
-- advanced unless something about it changed. Set-based throughout: one statement
-- validates the batch, then one writes each of unchanged, changed and new rows.
CREATE FUNCTION collector.ingest_auctions(platform text, rows jsonb,
    OUT inserted integer, OUT updated integer, OUT unchanged integer, OUT rejected integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    source_name text := 'auctions:' || platform;
BEGIN
    IF platform IS NULL OR platform !~ '^[a-z0-9][a-z0-9_.-]{0,39}$' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('invalid platform name %L', platform),
            HINT = 'Lower-case letters, digits, ".", "_" and "-", at most 40 characters.';
    END IF;
    IF jsonb_typeof(rows) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'rows must be a JSON array of auction objects';
    END IF;

    CREATE TEMP TABLE IF NOT EXISTS auction_batch (
        ord bigint, raw jsonb, platform_id text, domain text, sld text, tld text, auction_type text,
        price numeric, currency text, bids integer, end_time timestamptz, url text, reason text,
        known_id bigint
    ) ON COMMIT DROP;
    TRUNCATE auction_batch;

    -- Validate every row in one pass. A row whose domain is already stored verbatim for
    -- this auction is not parsed again (the usual case when a platform is re-read).
    INSERT INTO auction_batch
    SELECT r.ord, r.raw, f.platform_id,
           CASE WHEN known.domain = f.domain_in THEN known.domain ELSE p.registrable END,
           CASE WHEN known.domain = f.domain_in THEN known.sld ELSE p.sld END,
           CASE WHEN known.domain = f.domain_in THEN known.tld ELSE p.tld END,
           f.auction_type, f.price, f.currency,
           CASE WHEN f.bids ~ '^\d{1,9}$' THEN f.bids::integer END,
           t.end_time, f.url,
           CASE
             WHEN jsonb_typeof(r.raw) <> 'object' THEN 'row is not a JSON object'
             WHEN f.platform_id IS NULL OR f.platform_id = '' THEN 'id is missing'
             WHEN length(f.platform_id) > 200 THEN 'id is longer than 200 characters'
             WHEN p.problem IS NOT NULL THEN p.problem
             WHEN known.domain IS DISTINCT FROM f.domain_in AND p.subdomain IS NOT NULL
               THEN format('"%s" is not a registrable domain (did you mean %s?)', f.domain_in,
                           p.registrable)
             WHEN r.raw -> 'price' IS NULL OR r.raw -> 'price' = 'null' THEN 'price is missing'
             WHEN f.price IS NULL THEN format('price %s is not a number', r.raw -> 'price')
             WHEN f.price < 0 THEN format('price %s is negative', r.raw -> 'price')
             WHEN f.price >= 1e12 THEN format('price %s is too large', r.raw -> 'price')
             WHEN cur.code IS NULL THEN format('unknown currency %s', r.raw -> 'currency')
             WHEN cur.usd_rate IS NULL THEN format('no exchange rate for currency %s', cur.code)
             WHEN f.auction_type IS NULL THEN format('type %s is not one of bid, buy_now', r.raw -> 'type')
             WHEN f.bids IS NOT NULL AND f.bids !~ '^\d{1,9}$'
               THEN format('bids %s is not a non-negative integer', r.raw -> 'bids')
             WHEN f.end_time_in IS NOT NULL AND t.end_time IS NULL
               THEN format('end_time %s is not a timestamp', r.raw -> 'end_time')
             WHEN f.auction_type = 'bid' AND t.end_time IS NULL THEN 'a bid auction needs an end_time'
             WHEN f.url IS NOT NULL AND f.url !~ '^https?://' THEN format('url %s is not an http(s) URL', r.raw -> 'url')
             WHEN r.ord > min(r.ord) OVER (PARTITION BY f.platform_id)
               THEN format('duplicate of id %s earlier in this batch', f.platform_id)
           END,
           known.id
    FROM jsonb_array_elements(rows) WITH ORDINALITY AS r(raw, ord)
    CROSS JOIN LATERAL (SELECT
        CASE WHEN jsonb_typeof(r.raw) = 'object' THEN btrim(r.raw ->> 'id') END AS platform_id,
        CASE WHEN jsonb_typeof(r.raw) = 'object' THEN r.raw ->> 'domain' END AS domain_in,
        CASE lower(coalesce(r.raw ->> 'type', 'bid'))
          WHEN 'bid' THEN 'bid' WHEN 'buy_now' THEN 'buy_now' WHEN 'buynow' THEN 'buy_now' END AS auction_type,
        -- rounded as stored (numeric(14,2)), so an unchanged price compares equal
        CASE WHEN jsonb_typeof(r.raw) = 'object' THEN round(pounce.parse_price(r.raw -> 'price'), 2) END AS price,
        upper(coalesce(r.raw ->> 'currency', 'USD')) AS currency,
        r.raw ->> 'bids' AS bids,
        r.raw ->> 'end_time' AS end_time_in,
        nullif(btrim(r.raw ->> 'url'), '') AS url
        OFFSET 0) AS f
    LEFT JOIN pounce.auctions AS known
      ON known.platform = ingest_auctions.platform AND known.platform_id = f.platform_id
    -- OFFSET 0 (here and above) keeps each subquery from being pulled up, so its
    -- functions run once per row rather than once per reference
    LEFT JOIN LATERAL (SELECT (x.parts).registrable, (x.parts).sld, (x.parts).tld, (x.parts).subdomain, x.problem
                       FROM pounce.try_parse_domain(f.domain_in) AS x
                       WHERE known.domain IS DISTINCT FROM f.domain_in OFFSET 0) AS p ON true
    LEFT JOIN LATERAL (SELECT pounce.try_timestamptz(f.end_time_in) AS end_time OFFSET 0) AS t ON true
    LEFT JOIN pounce.currencies AS cur ON cur.code = f.currency;

    INSERT INTO pounce.ingest_rejects (source, reason, raw)
    SELECT source_name, b.reason, b.raw FROM auction_batch AS b WHERE b.reason IS NOT NULL ORDER BY b.ord;
    GET DIAGNOSTICS rejected = ROW_COUNT;

    -- Auctions seen again unchanged: only last_seen moves (no indexed column changes, so
    -- the update is HOT and touches no index). That is most rows of a re-read platform.
    UPDATE pounce.auctions AS a SET last_seen = now()
    FROM auction_batch AS b
    WHERE b.reason IS NULL AND a.id = b.known_id
      AND (a.domain, a.auction_type, a.current_price, a.currency, a.bids, a.end_time, a.url)
          IS NOT DISTINCT FROM (b.domain, b.auction_type, b.price, b.currency, coalesce(b.bids, 0), b.end_time, b.url)
      AND NOT (a.status = 'ended' AND (b.end_time IS NULL OR b.end_time > now()));
    GET DIAGNOSTICS unchanged = ROW_COUNT;

    -- Changed auctions: content, updated_at (alert matching reads it); an ended auction
    -- seen again before its end is active again (a snapshot ended it early).
    UPDATE pounce.auctions AS a
    SET domain = b.domain, sld = b.sld, tld = b.tld, auction_type = b.auction_type,
        current_price = b.price, currency = b.currency, bids = coalesce(b.bids, 0), end_time = b.end_time,
        url = b.url,
        status = CASE WHEN a.status = 'ended' AND (b.end_time IS NULL OR b.end_time > now())
                      THEN 'active' ELSE a.status END,
        last_seen = now(), updated_at = now()
    FROM auction_batch AS b
    WHERE b.reason IS NULL AND a.id = b.known_id
      AND ((a.domain, a.auction_type, a.current_price, a.currency, a.bids, a.end_time, a.url)
           IS DISTINCT FROM (b.domain, b.auction_type, b.price, b.currency, coalesce(b.bids, 0), b.end_time, b.url)
           OR (a.status = 'ended' AND (b.end_time IS NULL OR b.end_time > now())));
    GET DIAGNOSTICS updated = ROW_COUNT;

    -- New auctions. A concurrent batch of the same platform may have inserted one since
    -- the lookup above: then it counts as updated.
    WITH written AS (
        INSERT INTO pounce.auctions AS a (platform, platform_id, domain, sld, tld, auction_type,
                                          current_price, currency, bids, end_time, url)
        SELECT ingest_auctions.platform, b.platform_id, b.domain, b.sld, b.tld, b.auction_type,
               b.price, b.currency, coalesce(b.bids, 0), b.end_time, b.url
        FROM auction_batch AS b
        WHERE b.reason IS NULL AND b.known_id IS NULL
        ON CONFLICT ON CONSTRAINT auctions_platform_platform_id_key DO UPDATE SET
            domain = excluded.domain, sld = excluded.sld, tld = excluded.tld,
            auction_type = excluded.auction_type, current_price = excluded.current_price,
            currency = excluded.currency, bids = excluded.bids, end_time = excluded.end_time,
            url = excluded.url, last_seen = now(), updated_at = now()
        RETURNING (xmax = 0) AS is_new
    )
    SELECT count(*) FILTER (WHERE is_new), updated + count(*) FILTER (WHERE NOT is_new)
    INTO inserted, updated
    FROM written;

    DROP TABLE auction_batch;
END;
$$;
COMMENT ON FUNCTION collector.ingest_auctions(text, jsonb) IS
  'Upsert a batch of one platform''s auctions; returns inserted/updated/unchanged/rejected; bad rows go to pounce.ingest_rejects.';
GRANT EXECUTE ON FUNCTION collector.ingest_auctions(text, jsonb) TO collector;

-- finish_snapshot(platform, started_at): after a collector has sent a platform's
-- complete inventory (every batch since started_at), the platform's active auctions
-- that no batch contained are gone from the platform: they end. Returns how many.
-- Called only after a complete file, so a truncated download never ends live auctions.
CREATE FUNCTION collector.finish_snapshot(platform text, started_at timestamptz)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (
    UPDATE pounce.auctions AS a
    SET status = 'ended', updated_at = now()
    WHERE a.platform = finish_snapshot.platform
      AND a.status = 'active'
      AND a.last_seen < finish_snapshot.started_at
    RETURNING 1)
  SELECT count(*)::integer FROM gone;
END;
COMMENT ON FUNCTION collector.finish_snapshot(text, timestamptz) IS
  'End a platform''s active auctions not seen since started_at (call after a complete snapshot only).';
GRANT EXECUTE ON FUNCTION collector.finish_snapshot(text, timestamptz) TO collector;
