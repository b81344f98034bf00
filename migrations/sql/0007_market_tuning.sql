SET ROLE pounce_owner;

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
        -- base64url without padding or the line breaks encode() inserts
        || 'translate(encode(convert_to(jsonb_build_object(''s'', $13, ''k'', f.' || key_col
        || ', ''i'', f.id)::text, ''UTF8''), ''base64''), E''+/=\n'', ''-_'') '
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

-- ---- sql/market/auctions.sql: collector.ingest_auctions ----
CREATE OR REPLACE FUNCTION collector.ingest_auctions(platform text, rows jsonb,
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
