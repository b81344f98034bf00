SET ROLE pounce_owner;

-- ---- sql/core/ingest.sql (helpers, retention) ----
-- try_timestamptz(value): the timestamp a text spells, or NULL when it spells none; for
-- ingest functions, which turn a bad value into a reject instead of an error.
CREATE FUNCTION pounce.try_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
    RETURN value::timestamptz;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pounce.try_timestamptz(text) IS 'A text cast to timestamptz, NULL when it is not one.';

-- prune_ingest_rejects(keep): rejects are for inspection, not for ever. Returns how many
-- were deleted.
CREATE FUNCTION pounce.prune_ingest_rejects(keep interval DEFAULT interval '30 days') RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (
    DELETE FROM pounce.ingest_rejects WHERE received_at < now() - keep
    RETURNING 1)
  SELECT count(*) FROM gone;
END;
COMMENT ON FUNCTION pounce.prune_ingest_rejects(interval) IS 'Retention: deletes ingest rejects older than keep (pg_cron, daily).';

-- ---- sql/core/cron.sql (job) ----
INSERT INTO pounce.cron_jobs VALUES
  ('pounce.prune_ingest_rejects', '23 3 * * *', 'SELECT pounce.prune_ingest_rejects()',
   'delete ingest rejects older than 30 days');

-- ---- sql/market/names.sql ----
-- =============================================================================
-- Market: what a name is worth on its own — words, score, vectors
-- =============================================================================
-- Everything here is a function of the name (and, for the score, of the row that
-- carries it), so it can be stored: pounce_score and name vectors are STORED GENERATED
-- columns over IMMUTABLE functions. Only the dictionary lookup reads a table; its
-- result is a plain column (word_quality) that a trigger sets when a row is written.

-- ---- Dictionary ------------------------------------------------------------

-- English words (Debian's wamerican, data/words.txt), replaced by load_words().
CREATE TABLE pounce.words (
  word text PRIMARY KEY CHECK (word ~ '^[a-z]{2,20}$')
);
COMMENT ON TABLE pounce.words IS 'English dictionary words (Debian wamerican) for the dictionary-word quality of names.';

-- load_words: replaces the dictionary with the words of a text (one per line; lines
-- that are not lower-case a-z words of 2-20 letters are skipped). Returns the count.
CREATE FUNCTION pounce.load_words(list text)
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    loaded integer;
BEGIN
    CREATE TEMP TABLE new_words ON COMMIT DROP AS
    SELECT DISTINCT w AS word
    FROM regexp_split_to_table(list, '\s*\n\s*') AS w
    WHERE w ~ '^[a-z]{2,20}$';
    SELECT count(*) INTO loaded FROM new_words;
    -- a wrong file would otherwise empty the dictionary
    IF loaded < 1000 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('not a word list: only %s words', loaded),
            HINT = 'Pass the content of data/words.txt.';
    END IF;
    DELETE FROM pounce.words AS w WHERE NOT EXISTS (SELECT FROM new_words AS n WHERE n.word = w.word);
    INSERT INTO pounce.words (word) SELECT word FROM new_words ON CONFLICT DO NOTHING;
    DROP TABLE new_words;
    RETURN loaded;
END;
$$;
COMMENT ON FUNCTION pounce.load_words(text) IS 'Replaces pounce.words with a word list (reference data, loaded by migrate).';

-- word_quality(sld): how much of a name is made of dictionary words, 0-100.
--   100  the name is a word                           (cloud)
--    80  two words of 3+ letters                      (cloudking)
--    60  hyphen-separated parts that are all words    (best-cheap-loans)
--    40  starts or ends with a word of 4+ letters     (cloudzx, zxcloud)
--     0  otherwise (digits count as non-letters)
-- STABLE, not IMMUTABLE: it reads the dictionary. Rows store its result when written.
CREATE FUNCTION pounce.word_quality(sld text)
RETURNS smallint
LANGUAGE sql STABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT CASE
    WHEN sld !~ '^[a-z-]+$' THEN 0
    WHEN EXISTS (SELECT FROM pounce.words WHERE word = sld) THEN 100
    WHEN sld !~ '-' AND EXISTS (
      SELECT FROM generate_series(3, length(sld) - 3) AS i
      WHERE EXISTS (SELECT FROM pounce.words WHERE word = left(sld, i))
        AND EXISTS (SELECT FROM pounce.words WHERE word = substr(sld, i + 1))) THEN 80
    WHEN sld ~ '-' AND NOT EXISTS (
      SELECT FROM unnest(string_to_array(sld, '-')) AS p
      WHERE NOT EXISTS (SELECT FROM pounce.words WHERE word = p)) THEN 60
    WHEN sld !~ '-' AND EXISTS (
      SELECT FROM generate_series(4, length(sld) - 1) AS i
      WHERE EXISTS (SELECT FROM pounce.words WHERE word IN (left(sld, i), right(sld, i)))) THEN 40
    ELSE 0
  END::smallint;
END;
COMMENT ON FUNCTION pounce.word_quality(text) IS 'Dictionary-word quality of a second-level label, 0-100 (see sql/market/names.sql).';

-- ---- pounce_score ----------------------------------------------------------
--
-- pounce_score (0-100) is the sum of seven components, each from the row itself:
--
--   component        max  rule
--   length            25  sld length 1-2: 25, 3: 24, 4: 22, 5: 19, 6: 16, 7: 13, 8: 10,
--                         9: 8, 10: 6, 11-12: 4, 13-15: 2, longer: 0
--   characters        15  letters only 15, digits only 10, letters and digits 4,
--                         letters and hyphens 3, IDN (xn--) 2, digits with hyphens 0
--   tld               20  com 20; net org io ai co 14; app dev me de uk ca 10;
--                         other two-letter (country) 8; other 5; multi-label (co.uk) by
--                         its last label, minus 2
--   pronounceable     10  letters only: vowel share (y counts) 25-65%, no run of 4+
--                         consonants, no run of 3+ vowels: 10; one rule broken: 5; else 0
--   dictionary        15  word_quality * 15 / 100, rounded
--   bids              10  round(3 * ln(1 + bids)), at most 10 (1 bid: 2, 5: 5, 27+: 10)
--   deal               5  est_value / price: >= 3: 5, >= 1.5: 3, >= 1: 1, else (or unknown) 0
--
-- Name quality (all but bids and deal, at most 85) is what valuation uses, so the
-- score's deal component and the valuation never depend on each other in a circle.

-- score_parts: every component and the total, from the row's own columns.
-- PL/pgSQL on purpose: it runs once per written row (generated column), and a
-- PL/pgSQL body of plain expressions costs a few microseconds, where nested SQL
-- functions that cannot be inlined are planned again on every call.
CREATE FUNCTION pounce.score_parts(sld text, tld text, word_quality smallint, bids integer,
                                   price_usd numeric, est_value numeric,
    OUT length_points smallint, OUT character_points smallint, OUT tld_points smallint,
    OUT pronounce_points smallint, OUT dictionary_points smallint, OUT bid_points smallint,
    OUT deal_points smallint, OUT total smallint)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
-- (OUT parameters, not a named type: a member's listing insert runs this, and a member
-- may not look up types in schema pounce)
AS $$
DECLARE
    n integer := length(sld);
    last_label text := split_part(tld, '.', -1);
    vowel_share numeric;
BEGIN
    length_points := CASE
        WHEN n <= 2 THEN 25 WHEN n = 3 THEN 24 WHEN n = 4 THEN 22 WHEN n = 5 THEN 19 WHEN n = 6 THEN 16
        WHEN n = 7 THEN 13 WHEN n = 8 THEN 10 WHEN n = 9 THEN 8 WHEN n = 10 THEN 6 WHEN n <= 12 THEN 4
        WHEN n <= 15 THEN 2 ELSE 0 END;
    character_points := CASE
        WHEN sld LIKE 'xn--%' THEN 2
        WHEN sld ~ '^[a-z]+$' THEN 15
        WHEN sld ~ '^[0-9]+$' THEN 10
        WHEN sld ~ '^[a-z0-9]+$' THEN 4
        WHEN sld ~ '^[a-z-]+$' THEN 3
        ELSE 0 END;
    tld_points := CASE
        WHEN last_label = 'com' THEN 20
        WHEN last_label IN ('net', 'org', 'io', 'ai', 'co') THEN 14
        WHEN last_label IN ('app', 'dev', 'me', 'de', 'uk', 'ca') THEN 10
        WHEN last_label ~ '^[a-z]{2}$' THEN 8
        ELSE 5 END - CASE WHEN strpos(tld, '.') > 0 THEN 2 ELSE 0 END;
    IF sld ~ '^[a-z]+$' THEN
        vowel_share := length(translate(sld, 'bcdfghjklmnpqrstvwxz', '')) / n::numeric;
        -- 10, minus 5 per broken rule, never below 0
        pronounce_points := greatest(0, 10 - 5 * ((vowel_share NOT BETWEEN 0.25 AND 0.65)::int
                                                  + (sld ~ '[bcdfghjklmnpqrstvwxz]{4}')::int
                                                  + (sld ~ '[aeiouy]{3}')::int));
    ELSE
        pronounce_points := 0;
    END IF;
    dictionary_points := round(coalesce(word_quality, 0) * 15 / 100.0);
    bid_points := least(10, round(3 * ln(1 + greatest(coalesce(bids, 0), 0))));
    deal_points := CASE
        WHEN est_value IS NULL OR price_usd IS NULL OR price_usd <= 0 THEN 0
        WHEN est_value / price_usd >= 3 THEN 5
        WHEN est_value / price_usd >= 1.5 THEN 3
        WHEN est_value / price_usd >= 1 THEN 1
        ELSE 0 END;
    total := least(100, length_points + character_points + tld_points + pronounce_points
                        + dictionary_points + bid_points + deal_points);
END;
$$;
COMMENT ON FUNCTION pounce.score_parts(text, text, smallint, integer, numeric, numeric) IS
  'pounce_score components and total from a row''s own columns (formula in sql/market/names.sql).';

-- pounce_score: the total, for STORED GENERATED columns. No SET search_path, so the
-- planner inlines it into the column's expression; its body is parsed when it is
-- created (RETURN form), so no search_path can change what it calls.
CREATE FUNCTION pounce.pounce_score(sld text, tld text, word_quality smallint, bids integer,
                                    price_usd numeric, est_value numeric)
RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (pounce.score_parts(sld, tld, word_quality, bids, price_usd, est_value)).total;
COMMENT ON FUNCTION pounce.pounce_score(text, text, smallint, integer, numeric, numeric) IS
  'pounce_score 0-100 (sum of score_parts).';

-- ---- Name vectors ----------------------------------------------------------

-- name_vector(sld): a 64-dimension embedding of a label's character bigrams and
-- trigrams ("^cl", "clo", ... "d$", with the label's start and end marked), each hashed
-- to a dimension (hashtext, stable across platforms), trigrams weighted 1.5, bigrams
-- 0.5, L2-normalised so cosine distance compares spelling. Names sharing most of their
-- n-grams are close: cloudking / cloudkings 0.13, cloudking / zebra42 0.8.
CREATE FUNCTION pounce.name_vector(sld text)
RETURNS vector(64)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN (
  SELECT l2_normalize(array_agg(coalesce(g.weight, 0) ORDER BY d.i)::real[]::vector(64))
  FROM generate_series(0, 63) AS d(i)
  LEFT JOIN (
    SELECT hashtext(substr(s, p, n)) & 63 AS i, sum(n - 1.5) AS weight
    FROM (SELECT '^' || sld || '$' AS s) AS x,
         generate_series(2, 3) AS n,
         generate_series(1, length(s) - n + 1) AS p
    GROUP BY 1) AS g ON g.i = d.i);
COMMENT ON FUNCTION pounce.name_vector(text) IS 'Character n-gram embedding (64 dimensions, L2-normalised) of a label.';

-- The names on the market (active auctions and listings), one row per label, with the
-- vector and an HNSW index for "names like this one". Kept apart from auctions so a
-- price update never touches an HNSW index: the valuation job adds new names in
-- batches, prune_market_names() removes names no longer on the market.
CREATE TABLE pounce.market_names (
  sld       text PRIMARY KEY,
  name_vec  vector(64) NOT NULL GENERATED ALWAYS AS (pounce.name_vector(sld)) STORED,
  added_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX market_names_vec ON pounce.market_names USING hnsw (name_vec vector_cosine_ops);
COMMENT ON TABLE pounce.market_names IS 'Labels of active auctions and listings with their name vectors (HNSW).';

-- ---- sql/market/auctions.sql ----
-- =============================================================================
-- Market: auctions scraped from aftermarket platforms
-- =============================================================================

-- Auctions and listings draw ids from one sequence, so an id names one market item
-- whatever its kind: the feed's keyset cursor is (sort key, id) over both tables.
CREATE SEQUENCE pounce.market_item_ids AS bigint;
COMMENT ON SEQUENCE pounce.market_item_ids IS 'Ids of auctions and listings (one space: a feed cursor needs no kind).';

-- ---- Parsing helpers for ingestion (never raise: a bad row becomes a reject) ----

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

-- try_parse_domain: parse_domain for a batch: the parts, or NULL parts and the reason.
-- Fast paths first, because a batch is mostly plain names: a two-label lower-case
-- ASCII name under a known TLD that no PSL rule covers ("cloud.com") is its own
-- registrable domain, split at the dot (exactly what parse_domain concludes, without
-- its normalisation and rule search); another plainly valid name goes to parse_domain
-- directly. Only the rest pay for the subtransaction that catching an error costs.
CREATE FUNCTION pounce.try_parse_domain(name text, OUT parts pounce.domain_parts, OUT problem text)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
    IF name IS NULL THEN
        problem := 'domain is missing';
        RETURN;
    END IF;
    IF name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.[a-z]([a-z0-9-]{0,61}[a-z0-9])?$'
       AND name !~ '^[^.]{2}--|\.[^.]{2}--'
       AND EXISTS (SELECT FROM pounce.tlds WHERE tld = split_part(name, '.', 2))
       AND NOT EXISTS (SELECT FROM pounce.public_suffixes WHERE rule IN (name, '*.' || split_part(name, '.', 2))) THEN
        parts := ROW(name, name, split_part(name, '.', 1), split_part(name, '.', 2), NULL, name)::pounce.domain_parts;
        RETURN;
    END IF;
    IF name ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$'
       AND name !~ '(^|\.)(?!xn)[^.]{2}--'
       AND octet_length(name) <= 253
       AND EXISTS (SELECT FROM pounce.tlds WHERE tld = split_part(name, '.', -1))
       AND NOT EXISTS (SELECT FROM pounce.public_suffixes
                       WHERE rule IN (name, '*.' || substr(name, strpos(name, '.') + 1))) THEN
        parts := pounce.parse_domain(name);
        RETURN;
    END IF;
    BEGIN
        parts := pounce.parse_domain(name);
    EXCEPTION WHEN invalid_parameter_value THEN
        problem := SQLERRM;
    END;
END;
$$;
COMMENT ON FUNCTION pounce.try_parse_domain(text) IS 'parse_domain() that returns the error message instead of raising it.';

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
           CASE WHEN known.domain = f.domain_in THEN known.domain ELSE (p.parsed).parts.registrable END,
           CASE WHEN known.domain = f.domain_in THEN known.sld ELSE (p.parsed).parts.sld END,
           CASE WHEN known.domain = f.domain_in THEN known.tld ELSE (p.parsed).parts.tld END,
           f.auction_type, f.price, f.currency,
           CASE WHEN f.bids ~ '^\d{1,9}$' THEN f.bids::integer END,
           t.end_time, f.url,
           CASE
             WHEN jsonb_typeof(r.raw) <> 'object' THEN 'row is not a JSON object'
             WHEN f.platform_id IS NULL OR f.platform_id = '' THEN 'id is missing'
             WHEN length(f.platform_id) > 200 THEN 'id is longer than 200 characters'
             WHEN (p.parsed).problem IS NOT NULL THEN (p.parsed).problem
             WHEN known.domain IS DISTINCT FROM f.domain_in AND (p.parsed).parts.subdomain IS NOT NULL
               THEN format('"%s" is not a registrable domain (did you mean %s?)', f.domain_in,
                           (p.parsed).parts.registrable)
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
        nullif(btrim(r.raw ->> 'url'), '') AS url) AS f
    LEFT JOIN pounce.auctions AS known
      ON known.platform = ingest_auctions.platform AND known.platform_id = f.platform_id
    -- OFFSET 0 keeps each subquery from being pulled up, so its function runs once per
    -- row rather than once per reference
    LEFT JOIN LATERAL (SELECT pounce.try_parse_domain(f.domain_in) AS parsed
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

-- ---- sql/market/listings.sql ----
-- =============================================================================
-- Market: listings put up for sale by members
-- =============================================================================
-- A member lists a domain (draft), proves control of it with a DNS TXT record
-- (_pounce.<domain> TXT "pounce-verify=<token>"), and only then may set it active.
-- Everyone sees active listings in the feed; only the seller sees the rest (and the
-- token).

CREATE TABLE pounce.listings (
  id                  bigint PRIMARY KEY DEFAULT nextval('pounce.market_item_ids'),
  seller_id           uuid NOT NULL DEFAULT pounce.current_user_id() REFERENCES pounce.users ON DELETE CASCADE,
  domain              text NOT NULL,
  sld                 text NOT NULL,
  tld                 text NOT NULL,
  asking_price        numeric(14, 2) NOT NULL CHECK (asking_price > 0 AND asking_price < 1e12),
  min_offer           numeric(14, 2) CHECK (min_offer > 0 AND min_offer <= asking_price),
  currency            text NOT NULL DEFAULT 'USD' REFERENCES pounce.currencies,
  price_usd           numeric(14, 2) NOT NULL CHECK (price_usd >= 0),
  description         text CHECK (length(description) <= 2000),
  status              text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'sold', 'withdrawn')),
  verification_token  text NOT NULL DEFAULT encode(gen_random_bytes(16), 'hex'),
  verified_at         timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  word_quality        smallint NOT NULL DEFAULT 0,
  est_value           numeric(14, 2) CHECK (est_value >= 0),
  valued_at           timestamptz,
  sld_length          smallint NOT NULL GENERATED ALWAYS AS (length(sld)) STORED,
  has_digit           boolean NOT NULL GENERATED ALWAYS AS (sld ~ '[0-9]') STORED,
  has_hyphen          boolean NOT NULL GENERATED ALWAYS AS (strpos(sld, '-') > 0) STORED,
  pounce_score        smallint NOT NULL GENERATED ALWAYS AS (
                        pounce.pounce_score(sld, tld, word_quality, 0, price_usd, est_value)) STORED,
  CONSTRAINT listing_active_needs_verification CHECK (status <> 'active' OR verified_at IS NOT NULL),
  CHECK (domain = sld || '.' || tld)
);
COMMENT ON TABLE pounce.listings IS 'Domains members sell; active only after DNS TXT verification.';
COMMENT ON COLUMN pounce.listings.verification_token IS
  'Secret the seller publishes as TXT "pounce-verify=<token>" at _pounce.<domain>.';

-- A domain is on sale by at most one seller at a time; a seller lists it once.
CREATE UNIQUE INDEX listings_one_active ON pounce.listings (domain) WHERE status = 'active';
CREATE UNIQUE INDEX listings_seller_domain ON pounce.listings (seller_id, domain) WHERE status IN ('draft', 'active');
CREATE INDEX listings_seller ON pounce.listings (seller_id, created_at DESC);
CREATE INDEX listings_valuation ON pounce.listings (valued_at NULLS FIRST, id) WHERE status = 'active';

-- listing_write: the door for member writes. Normalises the domain (400 with the reason
-- when invalid), keeps what members may not set, resets verification when the domain
-- changes, and enforces the plan's listing limit race-safely (the seller's users row
-- is locked, so two concurrent inserts count one after the other).
CREATE FUNCTION pounce.listing_write()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    parts pounce.domain_parts;
    allowed integer;
    used integer;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.domain IS DISTINCT FROM OLD.domain THEN
        parts := pounce.parse_domain(NEW.domain);
        IF parts.subdomain IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = format('"%s" is not a registrable domain', NEW.domain),
                HINT = format('List the registrable name, %s.', parts.registrable);
        END IF;
        NEW.domain := parts.registrable;
        NEW.sld := parts.sld;
        NEW.tld := parts.tld;
    END IF;

    IF TG_OP = 'INSERT' THEN
        NEW.verified_at := NULL;
        NEW.created_at := now();
        SELECT t.listing_limit INTO allowed
        FROM pounce.users AS u JOIN pounce.tiers AS t ON t.tier = u.tier
        WHERE u.id = NEW.seller_id
        FOR UPDATE OF u;
        SELECT count(*) INTO used FROM pounce.listings
        WHERE seller_id = NEW.seller_id AND status IN ('draft', 'active');
        IF used >= allowed THEN
            RAISE EXCEPTION USING ERRCODE = 'P0001',
                MESSAGE = format('listing limit reached: your plan allows %s open listings', allowed),
                HINT = 'Withdraw a listing or upgrade your plan.';
        END IF;
    ELSE
        NEW.id := OLD.id;
        NEW.seller_id := OLD.seller_id;
        NEW.created_at := OLD.created_at;
        NEW.verification_token := OLD.verification_token;
        IF NEW.domain IS DISTINCT FROM OLD.domain THEN
            IF OLD.status <> 'draft' THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001',
                    MESSAGE = 'only a draft listing may change its domain';
            END IF;
            NEW.verified_at := NULL;
            NEW.verification_token := encode(gen_random_bytes(16), 'hex');
        END IF;
    END IF;
    IF NEW.status = 'active' AND NEW.verified_at IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001',
            MESSAGE = format('listing of %s is not verified yet', NEW.domain),
            HINT = format('Publish TXT "pounce-verify=%s" at _pounce.%s, then call /rpc/verify_listing.',
                          NEW.verification_token, NEW.domain);
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION pounce.listing_write() IS 'Trigger: domain normalisation, immutable columns, verification reset, plan limit.';

-- Runs before market_item_derive (names sort): the domain is parsed before its words.
CREATE TRIGGER listings_a_write BEFORE INSERT OR UPDATE ON pounce.listings
  FOR EACH ROW EXECUTE FUNCTION pounce.listing_write();
CREATE TRIGGER listings_b_derive BEFORE INSERT OR UPDATE ON pounce.listings
  FOR EACH ROW EXECUTE FUNCTION pounce.market_item_derive();

ALTER TABLE pounce.listings ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.listings FORCE ROW LEVEL SECURITY;
CREATE POLICY listings_own ON pounce.listings TO member
  USING (seller_id = pounce.current_user_id())
  WITH CHECK (seller_id = pounce.current_user_id());
CREATE POLICY listings_internal ON pounce.listings TO pounce_owner USING (true) WITH CHECK (true);

GRANT SELECT, DELETE ON pounce.listings TO member;
GRANT INSERT (domain, asking_price, min_offer, currency, description, status) ON pounce.listings TO member;
GRANT UPDATE (domain, asking_price, min_offer, currency, description, status) ON pounce.listings TO member;
GRANT USAGE ON SEQUENCE pounce.market_item_ids TO member;
GRANT EXECUTE ON FUNCTION pounce.idna_to_unicode(text) TO member;  -- api.listings.domain_unicode
-- a member's insert computes the generated pounce_score with the member's privileges
GRANT EXECUTE ON FUNCTION pounce.pounce_score(text, text, smallint, integer, numeric, numeric),
                          pounce.score_parts(text, text, smallint, integer, numeric, numeric) TO member;

-- ---- The public face of active listings ------------------------------------------
-- What the feed shows of an active listing, without seller or token, kept by a trigger.
-- A table of its own rather than a policy on listings: on a table with row-level
-- security the planner may not use column statistics for operators that are not
-- leakproof (LIKE, numeric comparisons), so keyword and price filters over listings
-- were estimated at one row and scanned the table.
CREATE TABLE pounce.listing_offers (
  id            bigint PRIMARY KEY REFERENCES pounce.listings ON DELETE CASCADE,
  domain        text NOT NULL UNIQUE,
  sld           text NOT NULL,
  tld           text NOT NULL,
  asking_price  numeric(14, 2) NOT NULL,
  currency      text NOT NULL,
  price_usd     numeric(14, 2) NOT NULL,
  listed_at     timestamptz NOT NULL,
  est_value     numeric(14, 2),
  word_quality  smallint NOT NULL,
  sld_length    smallint NOT NULL,
  has_digit     boolean NOT NULL,
  has_hyphen    boolean NOT NULL,
  pounce_score  smallint NOT NULL
);
COMMENT ON TABLE pounce.listing_offers IS 'Active listings as the public sees them (maintained from pounce.listings by a trigger).';
CREATE INDEX listing_offers_feed_score ON pounce.listing_offers (pounce_score, id);
CREATE INDEX listing_offers_feed_price ON pounce.listing_offers (price_usd, id);
CREATE INDEX listing_offers_feed_newest ON pounce.listing_offers (listed_at, id);
CREATE INDEX listing_offers_feed_tld ON pounce.listing_offers (tld, pounce_score, id);
CREATE INDEX listing_offers_sld_trgm ON pounce.listing_offers USING gin (sld gin_trgm_ops);
CREATE INDEX listing_offers_sld ON pounce.listing_offers (sld);
GRANT SELECT ON pounce.listing_offers TO anon, member;

-- publish_listing: an active listing is (re)published, any other state withdraws it.
CREATE FUNCTION pounce.publish_listing() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
    IF TG_OP <> 'DELETE' AND NEW.status = 'active' THEN
        INSERT INTO pounce.listing_offers AS o (id, domain, sld, tld, asking_price, currency, price_usd, listed_at,
                                                est_value, word_quality, sld_length, has_digit, has_hyphen,
                                                pounce_score)
        VALUES (NEW.id, NEW.domain, NEW.sld, NEW.tld, NEW.asking_price, NEW.currency, NEW.price_usd,
                NEW.created_at, NEW.est_value, NEW.word_quality, NEW.sld_length, NEW.has_digit, NEW.has_hyphen,
                NEW.pounce_score)
        ON CONFLICT (id) DO UPDATE SET
            domain = excluded.domain, sld = excluded.sld, tld = excluded.tld, asking_price = excluded.asking_price,
            currency = excluded.currency, price_usd = excluded.price_usd, est_value = excluded.est_value,
            word_quality = excluded.word_quality, sld_length = excluded.sld_length,
            has_digit = excluded.has_digit, has_hyphen = excluded.has_hyphen, pounce_score = excluded.pounce_score;
    ELSIF TG_OP = 'UPDATE' AND OLD.status = 'active' THEN
        DELETE FROM pounce.listing_offers WHERE id = OLD.id;
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pounce.publish_listing() IS 'Trigger: keeps pounce.listing_offers equal to the active listings.';
-- (a deleted listing's offer goes with it: ON DELETE CASCADE)
CREATE TRIGGER listings_publish AFTER INSERT OR UPDATE ON pounce.listings
  FOR EACH ROW EXECUTE FUNCTION pounce.publish_listing();

-- ---- API ---------------------------------------------------------------------

CREATE VIEW api.listings WITH (security_invoker = true) AS
SELECT id, domain, pounce.idna_to_unicode(domain) AS domain_unicode, asking_price, min_offer, currency,
       description, status, verification_token,
       '_pounce.' || domain AS verification_record,
       'pounce-verify=' || verification_token AS verification_value,
       verified_at, pounce_score, est_value, created_at, updated_at
FROM pounce.listings
WHERE seller_id = pounce.current_user_id();
COMMENT ON VIEW api.listings IS
  'The signed-in member''s listings. POST {domain, asking_price, min_offer?, currency?, description?} creates a '
  'draft; publish TXT verification_value at verification_record, call /rpc/verify_listing, then PATCH '
  '{"status": "active"}. Active listings appear in market_feed.';
GRANT SELECT, DELETE ON api.listings TO member;
GRANT INSERT (domain, asking_price, min_offer, currency, description, status) ON api.listings TO member;
GRANT UPDATE (domain, asking_price, min_offer, currency, description, status) ON api.listings TO member;

-- record_listing_verifications(results): the DNS checks' results, a batch at once:
-- [{"listing_id": 7, "txt_records": ["pounce-verify=...", ...]}, ...]. A listing is
-- verified when a TXT record at _pounce.<domain> equals "pounce-verify=<token>"; a
-- later failed check keeps it verified (records are often removed afterwards).
-- Returns how many listings became verified.
CREATE FUNCTION collector.record_listing_verifications(results jsonb)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH checked AS (
    SELECT r.listing_id, r.txt_records
    FROM jsonb_to_recordset(CASE WHEN jsonb_typeof(results) = 'array' THEN results ELSE '[]' END)
         AS r(listing_id bigint, txt_records text[])),
  verified AS (
    UPDATE pounce.listings AS l SET verified_at = now()
    FROM checked AS c
    WHERE l.id = c.listing_id AND l.verified_at IS NULL
      AND 'pounce-verify=' || l.verification_token = ANY (c.txt_records)
    RETURNING 1)
  SELECT count(*)::integer FROM verified;
END;
COMMENT ON FUNCTION collector.record_listing_verifications(jsonb) IS
  'Record TXT records found at _pounce.<domain> for listings ([{listing_id, txt_records}]); returns how many became verified.';
GRANT EXECUTE ON FUNCTION collector.record_listing_verifications(jsonb) TO collector;

-- ---- sql/market/sales.sql ----
-- =============================================================================
-- Market: comparable sales, and closing auctions that ended
-- =============================================================================

-- Sales are the evidence valuations stand on. Each carries its name vector (HNSW) so
-- "sales of names like this one" is an index scan. Sales are written rarely (auctions
-- that close, imported comparables), so the HNSW upkeep costs little.
CREATE TABLE pounce.sales (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain       text NOT NULL,
  sld          text NOT NULL,
  tld          text NOT NULL,
  price        numeric(14, 2) NOT NULL CHECK (price > 0),
  currency     text NOT NULL REFERENCES pounce.currencies,
  price_usd    numeric(14, 2) NOT NULL CHECK (price_usd > 0),
  sold_on      date NOT NULL,
  venue        text NOT NULL CHECK (venue ~ '^[a-z0-9][a-z0-9_.-]{0,39}$'),
  auction_id   bigint UNIQUE REFERENCES pounce.auctions ON DELETE SET NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  name_vec     vector(64) NOT NULL GENERATED ALWAYS AS (pounce.name_vector(sld)) STORED,
  UNIQUE (domain, sold_on, venue),
  CHECK (domain = sld || '.' || tld)
);
CREATE INDEX sales_vec ON pounce.sales USING hnsw (name_vec vector_cosine_ops);
CREATE INDEX sales_tld_recent ON pounce.sales (tld, sold_on DESC);
COMMENT ON TABLE pounce.sales IS 'Comparable domain sales (venue: platform or marketplace); auctions that close with bids land here.';

-- close_ended_auctions(): active auctions whose end time passed close: a bid auction
-- with bids is sold (and becomes a sale at its last price), any other ends. One
-- statement, so an auction is closed and recorded together or not at all. Returns
-- the number of auctions closed.
CREATE FUNCTION pounce.close_ended_auctions()
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH closed AS (
    UPDATE pounce.auctions AS a
    SET status = CASE WHEN a.auction_type = 'bid' AND a.bids > 0 THEN 'sold' ELSE 'ended' END,
        updated_at = now()
    WHERE a.status = 'active' AND a.end_time <= now()
    RETURNING a.id, a.domain, a.sld, a.tld, a.current_price, a.currency, a.price_usd, a.end_time,
              a.platform, a.status),
  recorded AS (
    INSERT INTO pounce.sales (domain, sld, tld, price, currency, price_usd, sold_on, venue, auction_id)
    SELECT domain, sld, tld, current_price, currency, price_usd, (end_time AT TIME ZONE 'UTC')::date,
           platform, id
    FROM closed
    WHERE status = 'sold' AND current_price > 0
    ON CONFLICT DO NOTHING
    RETURNING 1)
  SELECT count(*)::integer FROM closed;
END;
COMMENT ON FUNCTION pounce.close_ended_auctions() IS
  'Close auctions past their end time: sold (with bids, recorded in pounce.sales) or ended (pg_cron, every minute).';

-- ---- sql/market/valuation.sql ----
-- =============================================================================
-- Market: valuation (precomputed, never in a feed request)
-- =============================================================================
--
-- est_value (USD) blends a prior from the name's features with comparable sales:
--
--   quality   = the pounce_score components that describe the name alone (length,
--               characters, TLD, pronounceability, dictionary): 0-85
--   prior     = max(registration cost of the TLD in USD, or $10 when unknown, $1)
--               * e^(quality / 11)                  quality 85: ~2,300x, 40: ~38x, 20: ~6x
--   comparables: the 5 sales whose name vectors are nearest (cosine distance <= 0.35),
--               weight = similarity (1 - distance), halved for another TLD
--   est_value = the weighted geometric mean of the prior (weight 1) and the
--               comparables' prices, rounded to whole dollars
--
-- Geometric because prices are log-normal: one $2M sale next to a name must lift its
-- estimate, not replace it.

-- registration_cost_usd(tld): the cheapest first-year registration price of a TLD in
-- USD, NULL where no registrar's price is known. (Until TLD prices exist: revision 0006
-- replaces it with the intel view's figure.)
CREATE FUNCTION pounce.registration_cost_usd(tld text)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN NULL::numeric;
COMMENT ON FUNCTION pounce.registration_cost_usd(text) IS
  'Cheapest known first-year registration price of a TLD in USD (NULL when unknown).';

-- name_quality: the name-only part of pounce_score (0-85).
CREATE FUNCTION pounce.name_quality(sld text, tld text, word_quality smallint)
RETURNS smallint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    p record := pounce.score_parts(sld, tld, word_quality, 0, NULL, NULL);
BEGIN
    RETURN p.length_points + p.character_points + p.tld_points + p.pronounce_points + p.dictionary_points;
END;
$$;
COMMENT ON FUNCTION pounce.name_quality(text, text, smallint) IS 'Name-only part of pounce_score (0-85), the valuation prior''s input.';

-- valuation_comparables(sld, tld): the sales a valuation stands on (HNSW scan).
CREATE FUNCTION pounce.valuation_comparables(sld text, tld text)
RETURNS TABLE (domain text, price_usd numeric, sold_on date, venue text, similarity numeric, weight numeric)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
-- 5 results from a small candidate list: recall is ample for a valuation, and the
-- batch job runs this once per item
SET hnsw.ef_search = 20
AS $$
DECLARE
    target vector(64) := pounce.name_vector(sld);
BEGIN
    -- PL/pgSQL keeps this plan for the session: the batch job calls it once per item
    RETURN QUERY
    SELECT n.domain, n.price_usd, n.sold_on, n.venue,
           round((1 - n.distance)::numeric, 3),
           round(((1 - n.distance) * CASE WHEN n.tld = valuation_comparables.tld THEN 1 ELSE 0.5 END)::numeric, 3)
    FROM (SELECT s.domain, s.tld, s.price_usd, s.sold_on, s.venue, s.name_vec <=> target AS distance
          FROM pounce.sales AS s
          ORDER BY s.name_vec <=> target
          LIMIT 5) AS n
    WHERE n.distance <= 0.35
    ORDER BY n.distance, n.domain;
END;
$$;
COMMENT ON FUNCTION pounce.valuation_comparables(text, text) IS
  'The (up to 5) nearest sales by name vector within cosine distance 0.35, with similarity and weight.';

-- valuation_prior_usd: the feature-based prior of the formula above.
CREATE FUNCTION pounce.valuation_prior_usd(sld text, tld text, word_quality smallint)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN round(greatest(coalesce(pounce.registration_cost_usd(tld), 10), 1)
             * exp(pounce.name_quality(sld, tld, word_quality) / 11.0), 2);
COMMENT ON FUNCTION pounce.valuation_prior_usd(text, text, smallint) IS 'Feature-based valuation prior in USD.';

-- estimate_value: est_value by the formula above.
CREATE FUNCTION pounce.estimate_value(sld text, tld text, word_quality smallint)
RETURNS numeric
LANGUAGE plpgsql STABLE PARALLEL SAFE
COST 1000  -- an HNSW probe: tells the planner a scan calling it is worth parallelising
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    prior numeric := pounce.valuation_prior_usd(sld, tld, word_quality);
    weighted_logs numeric;
    weights numeric;
BEGIN
    SELECT sum(c.weight * ln(c.price_usd)), sum(c.weight) INTO weighted_logs, weights
    FROM pounce.valuation_comparables(sld, tld) AS c;
    RETURN round(exp((ln(prior) + coalesce(weighted_logs, 0)) / (1 + coalesce(weights, 0))));
END;
$$;
COMMENT ON FUNCTION pounce.estimate_value(text, text, smallint) IS 'Estimated value in USD (formula in sql/market/valuation.sql).';

-- value_market_items(batch): values up to batch active auctions and as many listings
-- that have no value yet or one older than a week, oldest first, and registers their
-- names in market_names. Rows another run holds are skipped (SKIP LOCKED), so
-- overlapping runs share the work. Returns the number of items valued.
CREATE FUNCTION pounce.value_market_items(batch integer DEFAULT 2000)
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    valued integer;
BEGIN
    WITH todo_auctions AS (
        SELECT id FROM pounce.auctions
        WHERE status = 'active' AND (valued_at IS NULL OR valued_at < now() - interval '7 days')
        ORDER BY valued_at NULLS FIRST, id
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    ), todo_listings AS (
        SELECT id FROM pounce.listings
        WHERE status = 'active' AND (valued_at IS NULL OR valued_at < now() - interval '7 days')
        ORDER BY valued_at NULLS FIRST, id
        LIMIT batch
        FOR UPDATE SKIP LOCKED
    ), valued_auctions AS (
        UPDATE pounce.auctions AS a
        SET est_value = pounce.estimate_value(a.sld, a.tld, a.word_quality), valued_at = now()
        FROM todo_auctions AS t WHERE a.id = t.id
        RETURNING a.sld
    ), valued_listings AS (
        UPDATE pounce.listings AS l
        SET est_value = pounce.estimate_value(l.sld, l.tld, l.word_quality), valued_at = now()
        FROM todo_listings AS t WHERE l.id = t.id
        RETURNING l.sld
    ), names AS (
        INSERT INTO pounce.market_names (sld)
        SELECT DISTINCT sld FROM (SELECT sld FROM valued_auctions UNION ALL SELECT sld FROM valued_listings) AS v
        ON CONFLICT DO NOTHING
    )
    SELECT (SELECT count(*) FROM valued_auctions) + (SELECT count(*) FROM valued_listings) INTO valued;
    RETURN valued;
END;
$$;
COMMENT ON FUNCTION pounce.value_market_items(integer) IS
  'Value new and week-old active auctions and listings in batches, register their names (pg_cron, every minute).';

-- prune_market_names(): names no active auction or listing carries leave the vector
-- index. Returns how many.
CREATE FUNCTION pounce.prune_market_names()
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (
    DELETE FROM pounce.market_names AS n
    WHERE NOT EXISTS (SELECT FROM pounce.auctions AS a WHERE a.sld = n.sld AND a.status = 'active')
      AND NOT EXISTS (SELECT FROM pounce.listing_offers AS o WHERE o.sld = n.sld)
    RETURNING 1)
  SELECT count(*)::integer FROM gone;
END;
COMMENT ON FUNCTION pounce.prune_market_names() IS 'Remove names no longer on the market from market_names (pg_cron, daily).';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.value_market_items', '* * * * *', 'SELECT pounce.value_market_items(2000)',
   'value new and week-old auctions and listings (2,000 of each per run)'),
  ('pounce.close_ended_auctions', '* * * * *', 'SELECT pounce.close_ended_auctions()',
   'close auctions past their end time; sold ones become sales'),
  ('pounce.prune_market_names', '41 3 * * *', 'SELECT pounce.prune_market_names()',
   'drop names no longer on the market from the vector index');

-- ---- sql/market/api.sql ----
-- =============================================================================
-- Market API: the feed, keyset pages, similar names, score and valuation explained
-- =============================================================================

-- Listings enter through pounce.listing_offers, their public face (sql/market/listings.sql).
-- The feed is a plain view over the indexed tables, not a materialized view: a new or
-- changed auction is in it the moment its batch commits, an ended one leaves it the
-- moment its end time passes, and every sort is an index scan per table merged by
-- the planner (Merge Append). bench/RESULTS.md has the measurements behind the choice.
-- Two shapes matter for that plan: the filters stand outside the UNION ALL (PostgreSQL
-- merges ordered index scans of a flattened UNION ALL only when its branches have no
-- WHERE of their own; outside, they are pushed into each branch and match the partial
-- indexes), and every column is typed exactly as in the first branch (otherwise the
-- UNION ALL is not flattened at all).
CREATE VIEW api.market_feed WITH (security_invoker = true) AS
SELECT kind, id, source, domain, sld, tld, sale_type, price, currency, price_usd, bids, end_time,
       pounce_score, est_value, deal_ratio, url, listed_at, sld_length, has_digit, has_hyphen, word_quality
FROM (
  SELECT 'auction'::text AS kind, a.id, a.platform AS source, a.domain, a.sld, a.tld,
         a.auction_type AS sale_type, a.current_price AS price, a.currency, a.price_usd, a.bids, a.end_time,
         a.pounce_score, a.est_value, round(a.est_value / nullif(a.price_usd, 0), 2) AS deal_ratio,
         a.url, a.first_seen AS listed_at, a.sld_length, a.has_digit, a.has_hyphen, a.word_quality, a.status
  FROM pounce.auctions AS a
  UNION ALL
  SELECT 'listing'::text, o.id, 'pounce'::text, o.domain, o.sld, o.tld,
         'buy_now'::text, o.asking_price, o.currency, o.price_usd, NULL::integer, NULL::timestamptz,
         o.pounce_score, o.est_value, round(o.est_value / nullif(o.price_usd, 0), 2),
         NULL::text, o.listed_at, o.sld_length, o.has_digit, o.has_hyphen, o.word_quality, 'active'::text
  FROM pounce.listing_offers AS o
) AS items
WHERE status = 'active' AND (end_time > now() OR end_time IS NULL);
COMMENT ON VIEW api.market_feed IS
  'Active auctions (kind auction, source = platform) and member listings (kind listing, source pounce) in one '
  'resource, scored and valued. Filter and order like any view (e.g. tld=in.(com,io)&price_usd=lte.500'
  '&order=pounce_score.desc,id.desc); for deep pages use /rpc/feed, which pages by keyset.';
COMMENT ON COLUMN api.market_feed.pounce_score IS '0-100; /rpc/score_breakdown explains it.';
COMMENT ON COLUMN api.market_feed.est_value IS 'Estimated value in USD (precomputed); /rpc/valuation explains it.';
COMMENT ON COLUMN api.market_feed.deal_ratio IS 'est_value / price in USD: above 1 is priced under its estimate.';
COMMENT ON COLUMN api.market_feed.word_quality IS '100 a dictionary word, 80 two words, 60 hyphenated words, 40 word prefix/suffix, 0 none.';
GRANT SELECT ON api.market_feed TO anon, member;
GRANT SELECT (id, platform, domain, sld, tld, auction_type, current_price, currency, price_usd, bids, end_time,
              pounce_score, est_value, url, first_seen, sld_length, has_digit, has_hyphen, word_quality, status)
  ON pounce.auctions TO anon, member;

-- feed(filters, sort, cursor, page_size): one page of the feed in a stable order with
-- an opaque cursor per row; pass the last row's cursor to get the next page. Each page
-- is an index range scan that starts where the previous one ended, so page 500 costs
-- what page 1 costs. The statement is assembled from fixed fragments for the filters
-- given (so each combination gets its own plan) and every value is a bound parameter.
CREATE FUNCTION api.feed(
    keyword text DEFAULT NULL,
    tlds text[] DEFAULT NULL,
    min_price numeric DEFAULT NULL,
    max_price numeric DEFAULT NULL,
    ending_within interval DEFAULT NULL,
    min_score integer DEFAULT NULL,
    sources text[] DEFAULT NULL,
    kinds text[] DEFAULT NULL,
    no_digits boolean DEFAULT false,
    no_hyphens boolean DEFAULT false,
    max_length integer DEFAULT NULL,
    dictionary_only boolean DEFAULT false,
    sort text DEFAULT 'score',
    cursor text DEFAULT NULL,
    page_size integer DEFAULT 50)
RETURNS TABLE (kind text, id bigint, source text, domain text, sld text, tld text, sale_type text,
               price numeric, currency text, price_usd numeric, bids integer, end_time timestamptz,
               pounce_score smallint, est_value numeric, deal_ratio numeric, url text,
               listed_at timestamptz, sld_length smallint, has_digit boolean, has_hyphen boolean,
               word_quality smallint, next_cursor text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    -- sort name -> key column, direction
    key_col text;
    descending boolean;
    query text;
    pattern text;
    after_num numeric;
    after_time timestamptz;
    after_id bigint;
    c jsonb;
BEGIN
    CASE sort
        WHEN 'score' THEN key_col := 'pounce_score'; descending := true;
        WHEN 'price_asc' THEN key_col := 'price_usd'; descending := false;
        WHEN 'price_desc' THEN key_col := 'price_usd'; descending := true;
        WHEN 'ending' THEN key_col := 'end_time'; descending := false;
        WHEN 'newest' THEN key_col := 'listed_at'; descending := true;
        ELSE RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('unknown sort %L', sort),
                 HINT = 'Sort by score, price_asc, price_desc, ending or newest.';
    END CASE;
    IF page_size IS NULL OR page_size NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'page_size must be between 1 and 200';
    END IF;
    IF keyword IS NOT NULL THEN
        keyword := lower(btrim(keyword));
        IF keyword !~ '^[a-z0-9-]{1,63}$' THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('invalid keyword %L', keyword),
                HINT = 'A keyword is part of a name: letters, digits and hyphens.';
        END IF;
        pattern := '%' || keyword || '%';  -- no LIKE wildcards can be in it (checked above)
    END IF;
    IF cursor IS NOT NULL THEN
        BEGIN
            c := convert_from(decode(translate(cursor, '-_', '+/')
                                     || repeat('=', (4 - length(cursor) % 4) % 4), 'base64'), 'UTF8')::jsonb;
        EXCEPTION WHEN OTHERS THEN
            c := NULL;  -- not base64 or not JSON
        END;
        IF c IS NOT NULL AND c ->> 's' IS DISTINCT FROM sort THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = format('this cursor belongs to sort %L, not %L', c ->> 's', sort);
        END IF;
        BEGIN
            after_id := (c ->> 'i')::bigint;
            IF key_col IN ('end_time', 'listed_at') THEN
                after_time := (c ->> 'k')::timestamptz;
            ELSE
                after_num := (c ->> 'k')::numeric;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            after_id := NULL;  -- values of the wrong type
        END;
        IF c IS NULL OR after_id IS NULL OR (after_num IS NULL AND after_time IS NULL) THEN
            RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid cursor',
                HINT = 'Pass next_cursor of the last row of the previous page unchanged.';
        END IF;
    END IF;

    query := 'SELECT f.*, '
        -- base64url without padding or the line breaks encode() inserts
        || 'translate(encode(convert_to(jsonb_build_object(''s'', $13, ''k'', f.' || key_col
        || ', ''i'', f.id)::text, ''UTF8''), ''base64''), E''+/=\n'', ''-_'') '
        || 'FROM api.market_feed AS f WHERE true';
    IF pattern IS NOT NULL THEN query := query || ' AND f.sld LIKE $1'; END IF;
    IF tlds IS NOT NULL THEN query := query || ' AND f.tld = ANY ($2)'; END IF;
    IF min_price IS NOT NULL THEN query := query || ' AND f.price_usd >= $3'; END IF;
    IF max_price IS NOT NULL THEN query := query || ' AND f.price_usd <= $4'; END IF;
    IF ending_within IS NOT NULL THEN query := query || ' AND f.end_time <= now() + $5'; END IF;
    IF min_score IS NOT NULL THEN query := query || ' AND f.pounce_score >= $6'; END IF;
    IF sources IS NOT NULL THEN query := query || ' AND f.source = ANY ($7)'; END IF;
    IF kinds IS NOT NULL THEN query := query || ' AND f.kind = ANY ($8)'; END IF;
    IF no_digits THEN query := query || ' AND NOT f.has_digit'; END IF;
    IF no_hyphens THEN query := query || ' AND NOT f.has_hyphen'; END IF;
    IF max_length IS NOT NULL THEN query := query || ' AND f.sld_length <= $9'; END IF;
    IF dictionary_only THEN query := query || ' AND f.word_quality >= 80'; END IF;
    IF key_col = 'end_time' THEN query := query || ' AND f.end_time IS NOT NULL'; END IF;
    IF cursor IS NOT NULL THEN
        -- the cursor's value typed as the column, or the comparison is not an index condition
        query := query || format(' AND (f.%I, f.id) %s (%s, $12)', key_col, CASE WHEN descending THEN '<' ELSE '>' END,
                                 CASE key_col WHEN 'pounce_score' THEN '$10::smallint' WHEN 'price_usd' THEN '$10'
                                              ELSE '$11' END);
    END IF;
    query := query || format(' ORDER BY f.%I %s, f.id %2$s LIMIT $14', key_col,
                             CASE WHEN descending THEN 'DESC' ELSE 'ASC' END);

    RETURN QUERY EXECUTE query
        USING pattern, tlds, min_price, max_price, ending_within, min_score, sources, kinds, max_length,
              after_num, after_time, after_id, sort, page_size;
END;
$$;
COMMENT ON FUNCTION api.feed(text, text[], numeric, numeric, interval, integer, text[], text[], boolean, boolean,
                             integer, boolean, text, text, integer) IS
  'One page of the market feed. Filters: keyword (part of the name), tlds, min_price/max_price (USD), '
  'ending_within (e.g. 6 hours), min_score, sources (platforms or pounce), kinds (auction, listing), no_digits, '
  'no_hyphens, max_length, dictionary_only (a word or two words). sort: score (default), price_asc, price_desc, '
  'ending (auctions only), newest. Pass the last row''s next_cursor as cursor for the next page (keyset: every '
  'page costs the same). page_size 1-200 (default 50).';
GRANT EXECUTE ON FUNCTION api.feed(text, text[], numeric, numeric, interval, integer, text[], text[], boolean,
                                   boolean, integer, boolean, text, text, integer) TO anon, member;

-- similar_domains(domain, k): names on the market that are spelled like the given one
-- (nearest name vectors, HNSW), each with its best offer. The name itself is excluded.
CREATE FUNCTION api.similar_domains(domain text, k integer DEFAULT 10)
RETURNS TABLE (similar_domain text, similarity numeric, kind text, id bigint, source text, price numeric,
               currency text, pounce_score smallint, est_value numeric)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    parts pounce.domain_parts := pounce.parse_domain(similar_domains.domain);
    target vector(64) := pounce.name_vector(parts.sld);
BEGIN
    IF k IS NULL OR k NOT BETWEEN 1 AND 100 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'k must be between 1 and 100';
    END IF;
    RETURN QUERY
    WITH near AS MATERIALIZED (
        -- more labels than asked for: one label may be on the market under several TLDs,
        -- and the name itself is dropped
        SELECT n.sld, n.name_vec <=> target AS distance
        FROM pounce.market_names AS n
        ORDER BY n.name_vec <=> target
        LIMIT k * 2 + 1
    )
    SELECT f.domain, round((1 - near.distance)::numeric, 3), f.kind, f.id, f.source, f.price, f.currency,
           f.pounce_score, f.est_value
    FROM near
    CROSS JOIN LATERAL (
        SELECT * FROM api.market_feed AS m
        WHERE m.sld = near.sld AND m.domain <> parts.registrable
        ORDER BY m.pounce_score DESC, m.id
        LIMIT 3) AS f
    ORDER BY near.distance, f.pounce_score DESC, f.id
    LIMIT k;
END;
$$;
COMMENT ON FUNCTION api.similar_domains(text, integer) IS
  'Up to k (1-100, default 10) domains on the market whose names are spelled most like the given one '
  '(character n-gram vectors), with similarity 0-1 and their offer.';
GRANT EXECUTE ON FUNCTION api.similar_domains(text, integer) TO anon, member;

-- score_breakdown(domain): each pounce_score component. For a name on the market the
-- stored row's bids, price and estimate count (its best-scored item); otherwise the
-- name alone.
CREATE FUNCTION api.score_breakdown(domain text)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH parsed AS (SELECT * FROM pounce.parse_domain(score_breakdown.domain)),
  item AS (
    SELECT m.kind, m.id, m.bids, m.price_usd, m.est_value, m.word_quality
    FROM api.market_feed AS m, parsed
    WHERE m.sld = parsed.sld AND m.domain = parsed.registrable  -- (sld: indexed)
    ORDER BY m.pounce_score DESC, m.id
    LIMIT 1)
  SELECT jsonb_build_object(
           'domain', parsed.registrable,
           'pounce_score', p.total,
           'on_market', item.id IS NOT NULL,
           'item', CASE WHEN item.id IS NOT NULL THEN jsonb_build_object('kind', item.kind, 'id', item.id) END,
           'components', jsonb_build_object(
             'length', jsonb_build_object('points', p.length_points, 'max', 25, 'value', length(parsed.sld)),
             'characters', jsonb_build_object('points', p.character_points, 'max', 15,
               'value', CASE WHEN parsed.sld LIKE 'xn--%' THEN 'idn' WHEN parsed.sld ~ '^[a-z]+$' THEN 'letters'
                             WHEN parsed.sld ~ '^[0-9]+$' THEN 'digits' WHEN parsed.sld ~ '^[a-z0-9]+$' THEN 'letters and digits'
                             WHEN parsed.sld ~ '^[a-z-]+$' THEN 'letters and hyphens' ELSE 'digits and hyphens' END),
             'tld', jsonb_build_object('points', p.tld_points, 'max', 20, 'value', parsed.tld),
             'pronounceable', jsonb_build_object('points', p.pronounce_points, 'max', 10),
             'dictionary', jsonb_build_object('points', p.dictionary_points, 'max', 15, 'word_quality', wq.q),
             'bids', jsonb_build_object('points', p.bid_points, 'max', 10, 'value', coalesce(item.bids, 0)),
             'deal', jsonb_build_object('points', p.deal_points, 'max', 5, 'price_usd', item.price_usd,
                                        'est_value', item.est_value)))
  FROM parsed
  LEFT JOIN item ON true
  CROSS JOIN LATERAL (SELECT coalesce(item.word_quality, pounce.word_quality(parsed.sld)) AS q) AS wq
  CROSS JOIN LATERAL pounce.score_parts(parsed.sld, parsed.tld, wq.q, item.bids, item.price_usd, item.est_value) AS p;
END;
COMMENT ON FUNCTION api.score_breakdown(text) IS
  'Why a name scores what it does: each pounce_score component with its points and maximum '
  '(length 25, characters 15, tld 20, pronounceable 10, dictionary 15, bids 10, deal 5).';
GRANT EXECUTE ON FUNCTION api.score_breakdown(text) TO anon, member;

-- valuation(domain): the estimate explained: features, prior, comparables. For a name
-- on the market the stored estimate is shown beside the one computed now.
CREATE FUNCTION api.valuation(domain text)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH parsed AS (SELECT * FROM pounce.parse_domain(valuation.domain)),
  item AS (
    SELECT m.est_value, m.word_quality FROM api.market_feed AS m, parsed
    WHERE m.sld = parsed.sld AND m.domain = parsed.registrable AND m.est_value IS NOT NULL  -- (sld: indexed)
    ORDER BY m.pounce_score DESC, m.id LIMIT 1),
  wq AS (SELECT coalesce((SELECT word_quality FROM item), pounce.word_quality(parsed.sld)) AS q FROM parsed)
  SELECT jsonb_build_object(
           'domain', parsed.registrable,
           'est_value', pounce.estimate_value(parsed.sld, parsed.tld, wq.q),
           'stored_est_value', (SELECT est_value FROM item),
           'currency', 'USD',
           'features', jsonb_build_object(
             'sld_length', length(parsed.sld), 'tld', parsed.tld, 'word_quality', wq.q,
             'has_digit', parsed.sld ~ '[0-9]', 'has_hyphen', strpos(parsed.sld, '-') > 0,
             'name_quality', pounce.name_quality(parsed.sld, parsed.tld, wq.q)),
           'registration_cost_usd', pounce.registration_cost_usd(parsed.tld),
           'prior_usd', pounce.valuation_prior_usd(parsed.sld, parsed.tld, wq.q),
           'comparables', coalesce((SELECT jsonb_agg(to_jsonb(c)) FROM pounce.valuation_comparables(parsed.sld, parsed.tld) AS c), '[]'),
           'method', 'weighted geometric mean of the feature prior (weight 1) and up to 5 comparable sales '
                     '(weight = name similarity, halved for another TLD)')
  FROM parsed, wq;
END;
COMMENT ON FUNCTION api.valuation(text) IS
  'The estimated value of a name in USD, explained: features, the feature-based prior, and the comparable '
  'sales (nearest by name vector) it is blended with.';
GRANT EXECUTE ON FUNCTION api.valuation(text) TO anon, member;
