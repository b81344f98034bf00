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
