SET ROLE pounce_owner;

-- ---- sql/watch/watchlist.sql: api.import_watchlist ----
CREATE OR REPLACE FUNCTION api.import_watchlist(names text[])
RETURNS TABLE (name text, domain text, result text, message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  me uuid := pounce.current_user_id();
  room integer;
BEGIN
  IF me IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'sign in first';
  END IF;
  IF cardinality(names) > 10000 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'at most 10,000 names per import';
  END IF;
  -- the same lock the limit trigger takes: the room counted here stays free
  SELECT t.watchlist_limit - (SELECT count(*) FROM pounce.watched_domains AS w WHERE w.user_id = me)
  INTO room
  FROM pounce.users AS u JOIN pounce.tiers AS t USING (tier)
  WHERE u.id = me
  FOR NO KEY UPDATE OF u;

  RETURN QUERY
  WITH input AS (
    -- one bad name does not sink the others: it is judged invalid with parse_domain's reason
    SELECT i.name, i.n, (p.parts).registrable AS domain, p.problem
    FROM unnest(names) WITH ORDINALITY AS i(name, n),
         LATERAL pounce.try_parse_domain(i.name) AS p),
  judged AS (
    SELECT input.*,
           row_number() OVER (PARTITION BY input.domain ORDER BY input.n) > 1 AS repeated,
           EXISTS (SELECT FROM pounce.watched_domains AS w
                   WHERE w.user_id = me AND w.domain = input.domain) AS already
    FROM input),
  fresh AS (
    SELECT judged.n, row_number() OVER (ORDER BY judged.n) AS k
    FROM judged WHERE judged.domain IS NOT NULL AND NOT judged.repeated AND NOT judged.already),
  added AS (
    INSERT INTO pounce.watched_domains (user_id, domain)
    SELECT me, j.domain FROM judged AS j JOIN fresh AS f USING (n)
    WHERE f.k <= room
    RETURNING watched_domains.domain)
  SELECT j.name, j.domain,
         CASE WHEN j.problem IS NOT NULL THEN 'invalid'
              WHEN j.repeated THEN 'duplicate'
              WHEN j.already THEN 'already_watched'
              WHEN f.k <= room THEN 'added'
              ELSE 'limit_reached' END,
         CASE WHEN j.problem IS NOT NULL THEN j.problem
              WHEN j.repeated THEN 'listed earlier in this import'
              WHEN j.already THEN 'already on your watchlist'
              WHEN f.k <= room THEN NULL
              ELSE 'your plan''s watchlist limit is reached' END
  FROM judged AS j LEFT JOIN fresh AS f USING (n)
  ORDER BY j.n;
END $$;
DROP FUNCTION pounce.domain_or_problem(text);

-- ---- sql/market/api.sql: api.feed ----
CREATE OR REPLACE FUNCTION api.feed(
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
