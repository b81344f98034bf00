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
