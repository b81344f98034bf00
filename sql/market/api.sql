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
        || 'pounce.base64url(convert_to(jsonb_build_object(''s'', $13, ''k'', f.' || key_col
        || ', ''i'', f.id)::text, ''UTF8'')) '
        || 'FROM api.market_feed AS f WHERE true';
    IF pattern IS NOT NULL THEN query := query || ' AND f.sld LIKE $1'; END IF;
    -- One TLD is an equality, so the (tld, pounce_score, id) indexes return that TLD's
    -- rows already in score order (PostgreSQL 15 keeps no order under = ANY).
    IF cardinality(tlds) = 1 THEN query := query || ' AND f.tld = ($2)[1]';
    ELSIF tlds IS NOT NULL THEN query := query || ' AND f.tld = ANY ($2)';
    END IF;
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
