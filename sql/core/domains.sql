-- Domain names: Punycode and IDNA, normalisation, the Public Suffix List, the TLDs of
-- the root zone, and parse_domain(), the one function every area calls to split a name.
--
-- PostgreSQL has no IDNA support and we do not use PL/Python, so RFC 3492 is written
-- here in PL/pgSQL. The reference data (PSL, TLDs) lives in tables that the loaders
-- below replace; data/ in the repository holds the current copies.

-- =============================================================================
-- Punycode (RFC 3492)
-- =============================================================================

-- punycode_adapt: the bias adaptation function (RFC 3492, section 6.1).
-- Returns the bias for the next code point.
CREATE FUNCTION pounce.punycode_adapt(delta bigint, num_points integer, first_time boolean)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    k integer := 0;
BEGIN
    delta := CASE WHEN first_time THEN delta / 700 ELSE delta / 2 END;  -- damp = 700
    delta := delta + delta / num_points;
    WHILE delta > 455 LOOP    -- ((base - tmin) * tmax) / 2
        delta := delta / 35;  -- base - tmin
        k := k + 36;          -- base
    END LOOP;
    RETURN k + (36 * delta) / (delta + 38);  -- (base - tmin + 1) * delta / (delta + skew)
END;
$$;
COMMENT ON FUNCTION pounce.punycode_adapt(bigint, integer, boolean) IS
    'Punycode bias adaptation (RFC 3492, section 6.1).';

-- punycode_encode: encodes one label (RFC 3492, section 6.3), without "xn--".
-- Returns e.g. 'mnchen-3ya' for 'münchen'; basic code points keep their case.
CREATE FUNCTION pounce.punycode_encode(label text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    digits CONSTANT text := 'abcdefghijklmnopqrstuvwxyz0123456789';
    code_points integer[] := ARRAY(
        SELECT ascii(c) FROM unnest(string_to_array(label, NULL)) WITH ORDINALITY AS t(c, i) ORDER BY i);
    basic text := regexp_replace(label, '[^\x01-\x7f]', '', 'g');
    output text := basic || CASE WHEN basic <> '' THEN '-' ELSE '' END;
    handled integer := length(basic);
    n integer := 128;    -- initial_n
    bias integer := 72;  -- initial_bias
    delta bigint := 0;
    m integer;
    c integer;
    q bigint;
    k integer;
    t integer;
BEGIN
    WHILE handled < cardinality(code_points) LOOP
        SELECT min(cp) INTO m FROM unnest(code_points) AS cp WHERE cp >= n;
        delta := delta + (m - n)::bigint * (handled + 1);
        n := m;
        FOREACH c IN ARRAY code_points LOOP
            IF c < n THEN
                delta := delta + 1;
            ELSIF c = n THEN
                -- delta as a generalized variable-length integer
                q := delta;
                k := 36;
                LOOP
                    t := CASE WHEN k <= bias THEN 1 WHEN k >= bias + 26 THEN 26 ELSE k - bias END;
                    EXIT WHEN q < t;
                    output := output || substr(digits, (t + (q - t) % (36 - t))::integer + 1, 1);
                    q := (q - t) / (36 - t);
                    k := k + 36;
                END LOOP;
                output := output || substr(digits, q::integer + 1, 1);
                bias := pounce.punycode_adapt(delta, handled + 1, handled = length(basic));
                delta := 0;
                handled := handled + 1;
            END IF;
        END LOOP;
        delta := delta + 1;
        n := n + 1;
    END LOOP;
    RETURN output;
END;
$$;
COMMENT ON FUNCTION pounce.punycode_encode(text) IS
    'Punycode encoding of one label, without the xn-- prefix (RFC 3492).';

-- punycode_decode: decodes one label (RFC 3492, section 6.2) given without "xn--".
-- Returns the Unicode label; raises 22023 on input that is not valid Punycode.
CREATE FUNCTION pounce.punycode_decode(label text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    -- the basic code points are those before the last "-", if there is one
    last_delimiter integer := strpos(reverse(label), '-');  -- counted from the end
    basic_length integer := CASE WHEN last_delimiter > 0 THEN length(label) - last_delimiter ELSE 0 END;
    output integer[] := ARRAY(
        SELECT ascii(c)
        FROM unnest(string_to_array(left(label, basic_length), NULL)) WITH ORDINALITY AS t(c, i)
        ORDER BY i);
    pos integer := CASE WHEN basic_length > 0 THEN basic_length + 2 ELSE 1 END;
    n bigint := 128;
    i bigint := 0;
    bias integer := 72;
    old_i bigint;
    w bigint;
    k integer;
    t integer;
    digit integer;
BEGIN
    IF octet_length(left(label, basic_length)) <> basic_length THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('invalid Punycode "%s": non-ASCII character before the delimiter', label);
    END IF;
    WHILE pos <= length(label) LOOP
        old_i := i;
        w := 1;
        k := 36;
        LOOP
            IF pos > length(label) THEN
                RAISE EXCEPTION USING ERRCODE = '22023',
                    MESSAGE = format('invalid Punycode "%s": unexpected end', label);
            END IF;
            digit := strpos('abcdefghijklmnopqrstuvwxyz0123456789', lower(substr(label, pos, 1))) - 1;
            IF digit < 0 THEN
                RAISE EXCEPTION USING ERRCODE = '22023',
                    MESSAGE = format('invalid Punycode "%s": "%s" is not a digit', label, substr(label, pos, 1));
            END IF;
            pos := pos + 1;
            i := i + digit * w;
            -- i / (length + 1) is added to n below: past U+10FFFF it is no code point
            IF i > 1114111::bigint * (cardinality(output) + 1) THEN
                RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('invalid Punycode "%s": overflow', label);
            END IF;
            t := CASE WHEN k <= bias THEN 1 WHEN k >= bias + 26 THEN 26 ELSE k - bias END;
            EXIT WHEN digit < t;
            w := w * (36 - t);
            k := k + 36;
        END LOOP;
        bias := pounce.punycode_adapt(i - old_i, cardinality(output) + 1, old_i = 0);
        n := n + i / (cardinality(output) + 1);
        i := i % (cardinality(output) + 1);
        IF n > 1114111 OR n BETWEEN 55296 AND 57343 THEN  -- beyond Unicode, or a UTF-16 surrogate
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = format('invalid Punycode "%s": decodes to code point %s', label, n);
        END IF;
        output := output[:i] || n::integer || output[i + 1:];
        i := i + 1;
    END LOOP;
    RETURN (SELECT coalesce(string_agg(chr(cp), '' ORDER BY o), '')
            FROM unnest(output) WITH ORDINALITY AS u(cp, o));
END;
$$;
COMMENT ON FUNCTION pounce.punycode_decode(text) IS
    'Punycode decoding of one label given without the xn-- prefix (RFC 3492); raises 22023 on invalid input.';

-- =============================================================================
-- IDNA and normalisation
-- =============================================================================

-- idna_to_ascii: per label, lower case and NFC, then "xn--" || Punycode if not ASCII.
-- Returns the ASCII form of a name; it does not validate (normalize_domain does).
-- Not a full UTS #46 mapping: code points that registries refuse (emoji, ...) pass.
CREATE FUNCTION pounce.idna_to_ascii(name text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE
    WHEN octet_length(name) = length(name) THEN lower(name)  -- all ASCII: nothing to encode
    ELSE (SELECT string_agg(CASE WHEN octet_length(label) = length(label) THEN label
                                 ELSE 'xn--' || pounce.punycode_encode(label) END, '.' ORDER BY n)
          FROM unnest(string_to_array(normalize(lower(name), NFC), '.')) WITH ORDINALITY AS t(label, n))
    END;
COMMENT ON FUNCTION pounce.idna_to_ascii(text) IS
    'ASCII (xn--) form of a name: per label lower case, NFC and Punycode. Does not validate.';

-- idna_to_unicode: per label, decodes "xn--" labels for display.
-- Returns the Unicode form; raises 22023 on a label that is not valid Punycode.
CREATE FUNCTION pounce.idna_to_unicode(name text)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN (
    SELECT coalesce(string_agg(CASE WHEN label ILIKE 'xn--%' THEN pounce.punycode_decode(substr(label, 5))
                                    ELSE label END, '.' ORDER BY n), '')
    FROM unnest(string_to_array(name, '.')) WITH ORDINALITY AS t(label, n));
COMMENT ON FUNCTION pounce.idna_to_unicode(text) IS 'Unicode display form of a name: decodes its xn-- labels.';

-- normalize_domain: the canonical ASCII form of a domain name, or an error.
-- Returns e.g. 'xn--mnchen-3ya.de' for ' MÜNCHEN.de. '; raises 22023 naming the
-- offending label when the name is not a valid host name (RFC 1035, 1123, 5891).
CREATE FUNCTION pounce.normalize_domain(name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    -- UTS #46 maps the ideographic and full-width full stops to "."; one trailing dot
    -- (the root) is allowed
    trimmed text := regexp_replace(translate(btrim(name, E' \t\r\n'), '。．｡', '...'), '\.$', '');
    unicode_name text := normalize(lower(trimmed), NFC);
    ascii_name text := pounce.idna_to_ascii(unicode_name);
    problem text[];  -- message, detail, hint
BEGIN
    IF trimmed = '' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'domain name is empty',
            HINT = 'Pass a name such as example.com.';
    END IF;

    -- Nearly every name passes these two expressions (two or more labels of valid
    -- syntax and length in ASCII form; no hyphen at either end of a Unicode label nor
    -- "--" in its positions 3-4 unless it is xn--); the query finds what is wrong with
    -- the others, label by label.
    IF ascii_name !~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'
       OR unicode_name ~ '(^|\.)(-|(?!xn)[^.]{2}--)|-(\.|$)' THEN
        SELECT p INTO problem
        FROM unnest(string_to_array(unicode_name, '.'), string_to_array(ascii_name, '.'))
             WITH ORDINALITY AS t(label, ascii_label, n),
        LATERAL (SELECT CASE
            WHEN label = '' THEN ARRAY[
                format('invalid domain name "%s": label %s is empty', name, n),
                'A leading dot or two dots in a row leave an empty label.',
                'Labels are separated by exactly one dot; only one trailing dot is allowed.']
            WHEN octet_length(ascii_label) > 63 THEN ARRAY[
                format('invalid domain name "%s": label "%s" is longer than 63 octets', name, label),
                format('The label is %s octets long in ASCII form.', octet_length(ascii_label)),
                'A label holds at most 63 octets (RFC 1035).']
            WHEN ascii_label !~ '^[a-z0-9-]+$' THEN ARRAY[
                format('invalid domain name "%s": label "%s" contains a character other than a-z, 0-9 and "-"',
                       name, label),
                format('The first such character is "%s".', substring(ascii_label FROM '[^a-z0-9-]')),
                'Host names allow letters, digits and hyphens (RFC 1123); Unicode letters become xn-- labels.']
            WHEN label LIKE '-%' OR label LIKE '%-' THEN ARRAY[
                format('invalid domain name "%s": label "%s" starts or ends with a hyphen', name, label),
                'Hyphens are allowed only inside a label.',
                'A label starts and ends with a letter or digit (RFC 1123).']
            WHEN substr(label, 3, 2) = '--' AND left(label, 2) <> 'xn' THEN ARRAY[
                format('invalid domain name "%s": label "%s" has "--" in positions 3 and 4 but is not an xn-- label',
                       name, label),
                'Only IDNA labels, which start with "xn--", may have "--" in positions 3 and 4.',
                'Positions 3 and 4 are reserved for IDNA encodings (RFC 5891, section 4.2.3.1).']
            END) AS x(p)
        WHERE p IS NOT NULL
        ORDER BY n
        LIMIT 1;

        IF problem IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = problem[1], DETAIL = problem[2], HINT = problem[3];
        END IF;
    END IF;
    IF octet_length(ascii_name) > 253 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('invalid domain name "%s": longer than 253 octets', name),
            DETAIL = format('The name is %s octets long in ASCII form.', octet_length(ascii_name)),
            HINT = 'A domain name holds at most 253 octets without the trailing dot (RFC 1035).';
    END IF;
    IF strpos(ascii_name, '.') = 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('invalid domain name "%s": a single label is not a domain name', name),
            HINT = 'Give the full name with its top-level domain, e.g. example.com.';
    END IF;
    RETURN ascii_name;
END;
$$;
COMMENT ON FUNCTION pounce.normalize_domain(text) IS
    'Canonical ASCII form of a domain name; raises 22023 naming the offending label when the name is invalid.';

-- =============================================================================
-- Reference data: the Public Suffix List and the TLDs
-- =============================================================================

-- Rules are stored as written in the PSL (in ASCII form), so "kawasaki.jp",
-- "*.kawasaki.jp" and "!city.kawasaki.jp" are three rows, and parse_domain finds each
-- candidate rule by primary key.
CREATE TABLE pounce.public_suffixes (
    rule text PRIMARY KEY CHECK (rule ~ '^(\*\.|!)?[a-z0-9-]+(\.[a-z0-9-]+)*$'),
    kind text NOT NULL GENERATED ALWAYS AS (
        CASE WHEN rule LIKE '*.%' THEN 'wildcard' WHEN rule LIKE '!%' THEN 'exception' ELSE 'normal' END) STORED,
    section text NOT NULL CHECK (section IN ('icann', 'private'))
);
COMMENT ON TABLE pounce.public_suffixes IS
    'Rules of the Public Suffix List (publicsuffix.org) in ASCII form. Replaced by load_public_suffixes().';
COMMENT ON COLUMN pounce.public_suffixes.rule IS
    'The rule as written in the list: "co.uk", wildcard "*.ck" or exception "!www.ck"; IDN labels as xn--.';
COMMENT ON COLUMN pounce.public_suffixes.section IS
    'icann: suffixes under which registries sell names (parse_domain uses these); '
    'private: suffixes that companies run, such as blogspot.com.';

CREATE TABLE pounce.tlds (
    tld text PRIMARY KEY CHECK (tld ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    tld_unicode text NOT NULL GENERATED ALWAYS AS (pounce.idna_to_unicode(tld)) STORED,
    type text NOT NULL CHECK (type IN ('generic', 'cctld', 'sponsored', 'restricted-generic', 'infrastructure')),
    registry_url text,
    created_on date,
    updated_on date,
    whois_servers text[] NOT NULL DEFAULT '{}',
    rdap_servers text[] NOT NULL DEFAULT '{}',
    is_idn boolean NOT NULL GENERATED ALWAYS AS (tld LIKE 'xn--%') STORED,
    sample_domains text[] NOT NULL DEFAULT '{}',
    loaded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pounce.tlds IS
    'Top-level domains of the IANA root zone with their registry, WHOIS and RDAP servers. Replaced by load_tlds().';
COMMENT ON COLUMN pounce.tlds.type IS 'IANA category as the source data spells it (cctld: country code).';
COMMENT ON COLUMN pounce.tlds.rdap_servers IS 'RDAP base URLs as published, e.g. https://rdap.nic.aaa/domain/.';
COMMENT ON COLUMN pounce.tlds.sample_domains IS 'Example registered names under the TLD and its second-level suffixes.';
COMMENT ON COLUMN pounce.tlds.loaded_at IS 'When the current values were loaded; a reload that changes nothing keeps it.';

-- load_public_suffixes: replaces the rules with those of a public_suffix_list.dat text.
-- Returns the number of rules in the list; unchanged rules are not rewritten, rules no
-- longer in the list are deleted.
CREATE FUNCTION pounce.load_public_suffixes(list text)
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    loaded integer;
BEGIN
    -- without this check a wrong file would delete every rule
    IF list !~ '// ===BEGIN ICANN DOMAINS===' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'not a public suffix list: no ICANN section',
            HINT = 'Pass the content of public_suffix_list.dat.';
    END IF;

    WITH lines AS (
        SELECT n, btrim(line, E' \t\r') AS line
        FROM regexp_split_to_table(list, '\n') WITH ORDINALITY AS t(line, n)
    ),
    -- each marker line starts a stretch that runs to the next marker; END markers start none
    sections AS (
        SELECT lower(substring(line FROM '^// ===BEGIN (ICANN|PRIVATE) DOMAINS===')) AS section,
               n AS first_line, lead(n) OVER (ORDER BY n) AS next_marker
        FROM lines
        WHERE line ~ '^// ===(BEGIN|END) (ICANN|PRIVATE) DOMAINS==='
    ),
    rules AS (
        -- a rule is the line up to its first whitespace (publicsuffix.org/list/)
        SELECT DISTINCT ON (rule) pounce.idna_to_ascii(substring(l.line FROM '^\S+')) AS rule, s.section
        FROM lines AS l
        JOIN sections AS s ON l.n > s.first_line AND (l.n < s.next_marker OR s.next_marker IS NULL)
        WHERE s.section IS NOT NULL AND l.line <> '' AND l.line NOT LIKE '//%'
        ORDER BY rule, s.section  -- a rule listed in both sections counts as icann
    ),
    upserted AS (
        INSERT INTO pounce.public_suffixes (rule, section)
        SELECT rule, section FROM rules
        ON CONFLICT (rule) DO UPDATE SET section = excluded.section
        WHERE public_suffixes.section <> excluded.section
    ),
    removed AS (
        DELETE FROM pounce.public_suffixes AS p
        WHERE NOT EXISTS (SELECT FROM rules AS r WHERE r.rule = p.rule)
    )
    SELECT count(*) INTO loaded FROM rules;
    -- parse_domain's cached generic plan is only as good as these statistics
    ANALYZE pounce.public_suffixes;
    RETURN loaded;
END;
$$;
COMMENT ON FUNCTION pounce.load_public_suffixes(text) IS
    'Replaces pounce.public_suffixes with the rules of a public_suffix_list.dat text; returns the rule count.';

-- load_tlds: replaces the TLDs with those of a whoisserver-world document (an object
-- keyed by TLD, as data/whoisservers.json). Returns the number of TLDs in it; unchanged
-- TLDs are not rewritten, TLDs no longer in it are deleted.
CREATE FUNCTION pounce.load_tlds(doc jsonb)
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    loaded integer;
BEGIN
    -- without this check a wrong document would delete every TLD
    IF jsonb_typeof(doc) <> 'object' OR doc = '{}' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'not a TLD document: expected a non-empty object keyed by TLD';
    END IF;

    WITH src AS (
        SELECT t.tld,
               v ->> 'type' AS type,
               -- "registry" is false when there is none; dates are epoch milliseconds
               CASE jsonb_typeof(v -> 'registry') WHEN 'string' THEN v ->> 'registry' END AS registry_url,
               (to_timestamp((v ->> 'tldCreated')::bigint / 1000.0) AT TIME ZONE 'UTC')::date AS created_on,
               (to_timestamp((v ->> 'tldUpdated')::bigint / 1000.0) AT TIME ZONE 'UTC')::date AS updated_on,
               ARRAY(SELECT jsonb_array_elements_text(v -> 'whoisServer')) AS whois_servers,
               ARRAY(SELECT jsonb_array_elements_text(v -> 'rdapServers')) AS rdap_servers,
               ARRAY(SELECT d.domain
                     FROM jsonb_each(v -> 'sampleDomains') AS s(suffix, domains),
                          jsonb_array_elements_text(s.domains) WITH ORDINALITY AS d(domain, i)
                     ORDER BY s.suffix, d.i) AS sample_domains
        FROM jsonb_each(doc) AS t(tld, v)
    ),
    upserted AS (
        INSERT INTO pounce.tlds AS cur (tld, type, registry_url, created_on, updated_on,
                                        whois_servers, rdap_servers, sample_domains)
        SELECT tld, type, registry_url, created_on, updated_on, whois_servers, rdap_servers, sample_domains
        FROM src
        ON CONFLICT (tld) DO UPDATE
        SET type = excluded.type, registry_url = excluded.registry_url, created_on = excluded.created_on,
            updated_on = excluded.updated_on, whois_servers = excluded.whois_servers,
            rdap_servers = excluded.rdap_servers, sample_domains = excluded.sample_domains, loaded_at = now()
        WHERE (cur.type, cur.registry_url, cur.created_on, cur.updated_on,
               cur.whois_servers, cur.rdap_servers, cur.sample_domains)
              IS DISTINCT FROM
              (excluded.type, excluded.registry_url, excluded.created_on, excluded.updated_on,
               excluded.whois_servers, excluded.rdap_servers, excluded.sample_domains)
    ),
    removed AS (
        DELETE FROM pounce.tlds AS cur
        WHERE NOT EXISTS (SELECT FROM src WHERE src.tld = cur.tld)
    )
    SELECT count(*) INTO loaded FROM src;
    ANALYZE pounce.tlds;
    RETURN loaded;
END;
$$;
COMMENT ON FUNCTION pounce.load_tlds(jsonb) IS
    'Replaces pounce.tlds with a whoisserver-world document (object keyed by TLD); returns the TLD count.';

-- =============================================================================
-- Parsing
-- =============================================================================

CREATE TYPE pounce.domain_parts AS (
    domain text,       -- the normalised full name: www.example.co.uk
    registrable text,  -- what a registrant buys: example.co.uk
    sld text,          -- the label left of the public suffix: example
    tld text,          -- the public suffix, of one or more labels: co.uk
    subdomain text,    -- the labels left of the registrable name, or NULL: www
    unicode text       -- the display form of domain
);
COMMENT ON TYPE pounce.domain_parts IS 'A domain name split on the Public Suffix List, as parse_domain() returns it.';

-- parse_domain: normalises a name and splits it on the ICANN section of the PSL.
-- Returns its domain_parts; raises 22023 for an invalid name, an unknown top-level
-- domain, or a name that is itself a public suffix.
CREATE FUNCTION pounce.parse_domain(name text)
RETURNS pounce.domain_parts
LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
-- One plan (index lookups) fits every name, but PL/pgSQL would re-plan the PSL query on
-- each call because a custom plan looks cheaper: that was two thirds of the cost.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    domain text := pounce.normalize_domain(name);
    labels text[] := string_to_array(domain, '.');
    total integer := cardinality(labels);
    suffix_start integer;  -- index of the public suffix's first label
    matched_rule text;
BEGIN
    IF NOT EXISTS (SELECT FROM pounce.tlds WHERE tld = labels[total]) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('unknown top-level domain "%s" in "%s"', labels[total], name),
            HINT = 'pounce.tlds holds the TLDs of the root zone; load it with pounce.load_tlds().';
    END IF;

    -- The PSL algorithm over all label-suffixes of the name at once: the suffix that
    -- starts at label i matches a normal rule equal to it, a wildcard rule "*." || (the
    -- suffix that starts at label i + 1), or an exception rule "!" || it, which makes the
    -- public suffix start one label later. An exception prevails, otherwise the longest.
    SELECT s.i + (r.kind = 'exception')::integer, r.rule
    INTO suffix_start, matched_rule
    FROM unnest(labels) WITH ORDINALITY AS s(label, i)
    JOIN pounce.public_suffixes AS r
      ON r.rule = ANY (ARRAY[array_to_string(labels[s.i:], '.'),
                             '*.' || array_to_string(labels[s.i + 1:], '.'),
                             '!' || array_to_string(labels[s.i:], '.')])
     AND r.section = 'icann'
    ORDER BY r.kind = 'exception' DESC, s.i
    LIMIT 1;
    -- no rule matches: the PSL's default rule "*" makes the TLD the public suffix
    suffix_start := coalesce(suffix_start, total);

    IF suffix_start = 1 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = format('"%s" is a public suffix, not a registrable domain', name),
            DETAIL = format('It matches the rule "%s" of the Public Suffix List.', matched_rule),
            HINT = format('Register a name under it, e.g. example.%s.', domain);
    END IF;

    RETURN ROW(domain,
               array_to_string(labels[suffix_start - 1:], '.'),
               labels[suffix_start - 1],
               array_to_string(labels[suffix_start:], '.'),
               nullif(array_to_string(labels[:suffix_start - 2], '.'), ''),
               pounce.idna_to_unicode(domain))::pounce.domain_parts;
END;
$$;
COMMENT ON FUNCTION pounce.parse_domain(text) IS
    'Normalises a name and splits it on the ICANN Public Suffix List into domain, registrable, sld, tld, '
    'subdomain and unicode; raises 22023 for an invalid name, an unknown TLD or a bare public suffix.';

-- try_parse_domain: parse_domain for batches (ingestion, bulk imports): the parts, or
-- NULL parts and the reason.
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

-- =============================================================================
-- API
-- =============================================================================

-- parse_domain(name): the same split for clients, so a frontend validates a name
-- exactly as the database will. SECURITY DEFINER: web roles may not read the
-- reference tables themselves.
CREATE FUNCTION api.parse_domain(name text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT to_jsonb(p) || jsonb_build_object('tld_type', t.type, 'rdap_servers', to_jsonb(t.rdap_servers))
  FROM pounce.parse_domain(parse_domain.name) AS p
  LEFT JOIN pounce.tlds AS t ON t.tld = split_part(p.tld, '.', -1);
END;
COMMENT ON FUNCTION api.parse_domain(text) IS
  'Normalise a domain name (lower case, IDNA to punycode) and split it on the Public Suffix List: '
  '{domain, registrable, sld, tld, subdomain, unicode, tld_type, rdap_servers}. 400 with the reason for an invalid name.';
GRANT EXECUTE ON FUNCTION api.parse_domain(text) TO anon, member;
