-- ---- sql/roles.sql ----
-- =============================================================================
-- Roles (cluster-wide)
-- =============================================================================
-- Roles belong to the cluster, not the database, so every database built from this
-- file shares them: create what is missing, then (re)state each role's attributes.
--
--   pounce_owner   owns every schema object; SECURITY DEFINER functions run as it
--   authenticator  PostgREST / the local API server log in as it, then SET ROLE
--   anon           requests without a JWT
--   member         a signed-in user (JWT role claim "member")
--   admin          an operator (JWT role claim "admin"); also a member
--   collector      the data collectors' login; may only execute collector.*
DO $$
DECLARE
  role_name text;
BEGIN
  FOREACH role_name IN ARRAY ARRAY['pounce_owner', 'authenticator', 'anon', 'member', 'admin', 'collector'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another database's migration created it meanwhile
      END;
    END IF;
  END LOOP;
END $$;

ALTER ROLE pounce_owner  NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE authenticator LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE anon          NOLOGIN NOSUPERUSER NOBYPASSRLS;
ALTER ROLE member        NOLOGIN NOSUPERUSER NOBYPASSRLS;
ALTER ROLE admin         NOLOGIN NOSUPERUSER NOBYPASSRLS;
ALTER ROLE collector     LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;

-- authenticator may become any web role, and nothing else.
GRANT anon, member, admin TO authenticator;
-- An admin is also a member: member policies and grants apply to admins too.
GRANT member TO admin;

-- Functions are not executable by PUBLIC unless granted: every grant is explicit.
ALTER DEFAULT PRIVILEGES FOR ROLE pounce_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- ---- sql/extensions.sql ----
-- =============================================================================
-- Extensions
-- =============================================================================
-- In schema public, which every role can use (but not create in, since PG 15).
CREATE EXTENSION IF NOT EXISTS pg_trgm;             -- keyword search on names
CREATE EXTENSION IF NOT EXISTS pgcrypto;            -- bcrypt, HMAC for JWT and tokens
CREATE EXTENSION IF NOT EXISTS citext;              -- case-insensitive e-mail
CREATE EXTENSION IF NOT EXISTS vector;              -- name embeddings (pgvector)
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;  -- what the DBA tunes with

-- pg_cron can exist only in the database named by cron.database_name; other databases
-- built from this file (tests, the catalog check) simply have no cron schema.
DO $$
BEGIN
  IF current_database() = current_setting('cron.database_name', true) THEN
    CREATE EXTENSION IF NOT EXISTS pg_cron;
  END IF;
END $$;

-- HNSW indexes and iterative scans need pgvector 0.7 or newer.
DO $$
BEGIN
  IF (SELECT string_to_array(extversion, '.')::int[] FROM pg_extension WHERE extname = 'vector')
     < ARRAY[0, 7] THEN
    RAISE EXCEPTION 'pgvector 0.7 or newer is required';
  END IF;
END $$;

-- ---- sql/schemas.sql ----
-- =============================================================================
-- Schemas
-- =============================================================================
--   pounce     private tables, types and internal functions; never granted to web roles
--   api        what the web sees through PostgREST: views and functions only
--   collector  functions the collectors call; only the collector role may execute them
CREATE SCHEMA pounce AUTHORIZATION pounce_owner;
CREATE SCHEMA api AUTHORIZATION pounce_owner;
CREATE SCHEMA collector AUTHORIZATION pounce_owner;

COMMENT ON SCHEMA api IS 'Pounce REST API: domain watchlist, TLD prices, market feed and alerts.';

GRANT USAGE ON SCHEMA api TO anon, member, admin;
GRANT USAGE ON SCHEMA collector TO collector;

-- Everything below is created by (and so owned by) pounce_owner.
SET ROLE pounce_owner;

-- ---- sql/core/settings.sql ----
-- =============================================================================
-- Settings and secrets
-- =============================================================================
-- One row per setting. Secrets (the JWT secret) live here rather than in a GUC, where
-- any session could read them with current_setting(); no web role can read this table,
-- only SECURITY DEFINER functions owned by pounce_owner. `pounce db migrate` writes the
-- secrets from the environment (or the embedded cluster's generated secrets file).
CREATE TABLE pounce.settings (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
  value       text NOT NULL,
  is_secret   boolean NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pounce.settings IS 'Configuration read by database functions; secrets are never exposed.';

INSERT INTO pounce.settings (name, value, is_secret) VALUES
  ('jwt_ttl', '12 hours', false),   -- lifetime of tokens from api.login / api.signup
  ('bcrypt_cost', '10', false);     -- pgcrypto bf cost for new password hashes

-- setting(name): the value, or an error naming the missing setting.
CREATE FUNCTION pounce.setting(setting_name text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  v text;
BEGIN
  SELECT value INTO v FROM pounce.settings WHERE name = setting_name;
  IF v IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'P0002',
      MESSAGE = format('setting "%s" is not configured', setting_name),
      HINT = 'run `pounce db migrate`, which writes the settings from the environment';
  END IF;
  RETURN v;
END $$;
COMMENT ON FUNCTION pounce.setting(text) IS 'Value of a pounce.settings row; raises if it is missing.';

-- ---- sql/core/domains.sql ----
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

-- ---- sql/core/identity.sql ----
-- =============================================================================
-- Identity: plans, users, passwords, JWTs, the request check
-- =============================================================================

-- -----------------------------------------------------------------------------
-- Plans (tiers) are data: every limit a feature enforces is read from here.
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.tiers (
  tier                       text PRIMARY KEY CHECK (tier ~ '^[a-z]+$'),
  name                       text NOT NULL,
  rank                       smallint NOT NULL UNIQUE,
  price_usd_month            numeric(8,2) NOT NULL CHECK (price_usd_month >= 0),
  watchlist_limit            integer NOT NULL CHECK (watchlist_limit >= 0),
  check_interval             interval NOT NULL CHECK (check_interval >= interval '1 minute'),
  sniper_alert_limit         integer NOT NULL CHECK (sniper_alert_limit >= 0),
  listing_limit              integer NOT NULL CHECK (listing_limit >= 0),
  api_requests_per_minute    integer NOT NULL CHECK (api_requests_per_minute > 0),
  health_refreshes_per_hour  integer NOT NULL CHECK (health_refreshes_per_hour >= 0)
);
COMMENT ON TABLE pounce.tiers IS 'Plans and their limits; features read limits from here, never from code.';

INSERT INTO pounce.tiers VALUES
  ('scout',  'Scout',  1,  0.00,   5, interval '24 hours',   2,  1,   60,  2),
  ('trader', 'Trader', 2,  9.00,  50, interval '1 hour',    10, 10,  300, 10),
  ('tycoon', 'Tycoon', 3, 29.00, 500, interval '10 minutes', 50, 50, 1200, 60);

-- -----------------------------------------------------------------------------
-- Input checks, shared by the table constraints and the API's error messages
-- -----------------------------------------------------------------------------

-- email_problem(email): NULL when the address is acceptable, else why not.
CREATE FUNCTION pounce.email_problem(email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE
  WHEN email IS NULL OR email = '' THEN 'an email address is required'
  WHEN length(email) > 254 THEN 'an email address has at most 254 characters'
  WHEN email !~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
    THEN 'not an email address (expected name@example.com)'
  WHEN split_part(email, '@', 1) ~ '(^\.|\.$|\.\.)' THEN 'misplaced dot before the @'
END;
COMMENT ON FUNCTION pounce.email_problem(text) IS 'NULL if the e-mail address is acceptable, otherwise the reason.';

-- password_problem(password, email): NULL when strong enough, else why not.
-- bcrypt only reads 72 bytes, so longer passwords would silently lose their tail.
CREATE FUNCTION pounce.password_problem(password text, email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE
  WHEN password IS NULL OR length(password) < 10 THEN 'a password needs at least 10 characters'
  WHEN octet_length(password) > 72 THEN 'a password has at most 72 bytes'
  WHEN password ~ '^(.)\1*$' THEN 'a password must not repeat one character'
  WHEN (password ~ '[A-Za-z]')::int + (password ~ '[0-9]')::int + (password ~ '[^A-Za-z0-9]')::int < 2
    THEN 'a password must mix letters with digits or symbols'
  WHEN length(split_part(email, '@', 1)) >= 4
       AND strpos(lower(password), lower(split_part(email, '@', 1))) > 0
    THEN 'a password must not contain the email address'
END;
COMMENT ON FUNCTION pounce.password_problem(text, text) IS 'NULL if the password is acceptable for this e-mail, otherwise the reason.';

-- hash_password(password): a bcrypt hash at the configured cost (pounce.settings).
CREATE FUNCTION pounce.hash_password(password text) RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
RETURN public.crypt(password, public.gen_salt('bf', pounce.setting('bcrypt_cost')::int));
COMMENT ON FUNCTION pounce.hash_password(text) IS 'bcrypt hash of a password at the configured cost.';

-- password_matches(password, hash): whether the password is the one hashed (NULL: no).
CREATE FUNCTION pounce.password_matches(password text, password_hash text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN public.crypt(coalesce(password, ''), password_hash) IS NOT DISTINCT FROM password_hash;
COMMENT ON FUNCTION pounce.password_matches(text, text) IS 'True when the password hashes to password_hash.';

-- -----------------------------------------------------------------------------
-- Users
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.users (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email          public.citext NOT NULL UNIQUE
                 CONSTRAINT users_email_valid CHECK (pounce.email_problem(email::text) IS NULL),
  password_hash  text NOT NULL CONSTRAINT users_password_is_bcrypt CHECK (password_hash ~ '^\$2[abxy]\$\d\d\$'),
  role           text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
  tier           text NOT NULL DEFAULT 'scout' REFERENCES pounce.tiers ON UPDATE CASCADE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_login_at  timestamptz,
  disabled       boolean NOT NULL DEFAULT false
);
CREATE INDEX users_tier ON pounce.users (tier);
COMMENT ON TABLE pounce.users IS 'Accounts. The JWT "sub" claim is users.id; "role" is users.role.';

ALTER TABLE pounce.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.users FORCE ROW LEVEL SECURITY;

-- -----------------------------------------------------------------------------
-- The request's identity
-- -----------------------------------------------------------------------------

-- current_user_id(): the signed-in user's id from the JWT claims PostgREST sets per
-- request, or NULL for anon. Policies compare rows against it.
CREATE FUNCTION pounce.current_user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '')::uuid;
COMMENT ON FUNCTION pounce.current_user_id() IS 'Signed-in user id (JWT sub claim) or NULL.';

-- current_role_claim(): 'anon', 'member' or 'admin' as the JWT says (anon if none).
CREATE FUNCTION pounce.current_role_claim() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'anon');
COMMENT ON FUNCTION pounce.current_role_claim() IS 'Role claim of the request JWT, anon when there is none.';

-- Policies: a member sees only their own row, an admin every row. SECURITY DEFINER
-- functions run as pounce_owner and filter explicitly (FORCE makes even the owner
-- subject to policies, so its access is stated here rather than implied).
CREATE POLICY users_self ON pounce.users FOR SELECT TO member
  USING (id = pounce.current_user_id());
CREATE POLICY users_admin_read ON pounce.users FOR SELECT TO admin USING (true);
CREATE POLICY users_internal ON pounce.users TO pounce_owner USING (true) WITH CHECK (true);

GRANT SELECT (id, email, role, tier, created_at, last_login_at, disabled) ON pounce.users TO member;
GRANT SELECT ON pounce.tiers TO anon, member;
GRANT EXECUTE ON FUNCTION pounce.current_user_id(), pounce.current_role_claim() TO anon, member, admin;

-- -----------------------------------------------------------------------------
-- JWT (HS256), signed inside the database with pgcrypto
-- -----------------------------------------------------------------------------

-- base64url(bytes): RFC 4648 section 5 encoding without padding, as JWS requires.
CREATE FUNCTION pounce.base64url(data bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN rtrim(translate(encode(data, 'base64'), E'+/\n', '-_'), '=');

-- jwt_sign(claims): a compact HS256 JWS of the claims with the configured secret.
CREATE FUNCTION pounce.jwt_sign(claims jsonb) RETURNS text
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT signing_input || '.' || pounce.base64url(
           public.hmac(convert_to(signing_input, 'UTF8'), convert_to(pounce.setting('jwt_secret'), 'UTF8'), 'sha256'))
  FROM (SELECT pounce.base64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) || '.' ||
               pounce.base64url(convert_to(claims::text, 'UTF8')) AS signing_input) AS s;
END;
COMMENT ON FUNCTION pounce.jwt_sign(jsonb) IS 'HS256 JWT of the claims, signed with the shared secret (also PostgREST''s jwt-secret).';

-- session_for(user): the token and facts a client keeps after signing in.
CREATE FUNCTION pounce.session_for(user_id uuid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT jsonb_build_object(
           'token', pounce.jwt_sign(jsonb_build_object(
              'sub', u.id, 'role', u.role, 'email', u.email::text,
              'iat', floor(extract(epoch FROM now()))::bigint,
              'exp', floor(extract(epoch FROM s.expires_at))::bigint)),
           'user_id', u.id,
           'role', u.role,
           'tier', u.tier,
           'expires_at', s.expires_at)
  FROM pounce.users AS u,
       LATERAL (SELECT now() + pounce.setting('jwt_ttl')::interval AS expires_at) AS s
  WHERE u.id = session_for.user_id;
END;

-- -----------------------------------------------------------------------------
-- The db-pre-request check (PostgREST runs it before every request)
-- -----------------------------------------------------------------------------
-- A valid token outlives a change to its account: refuse tokens of disabled or deleted
-- accounts, and tokens whose role claim no longer matches the account's role. It lives
-- in api because PostgREST calls it as the request's role, which may use no other
-- schema; as /rpc/check_request it doubles as a "is my token still good?" probe.
CREATE FUNCTION api.check_request() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  claim_role text := pounce.current_role_claim();
  account record;
BEGIN
  IF claim_role NOT IN ('member', 'admin') THEN
    RETURN;
  END IF;
  SELECT u.role, u.disabled INTO account FROM pounce.users AS u WHERE u.id = pounce.current_user_id();
  IF NOT FOUND OR account.disabled THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'account disabled',
      DETAIL = 'this token belongs to an account that is disabled or no longer exists';
  END IF;
  IF account.role <> claim_role THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'token role is out of date',
      HINT = 'sign in again to get a token for the account''s current role';
  END IF;
END $$;
COMMENT ON FUNCTION api.check_request() IS
  'PostgREST db-pre-request: rejects tokens of disabled or deleted accounts and stale role claims (403). '
  'Call it to check that a token is still good.';
GRANT EXECUTE ON FUNCTION api.check_request() TO anon, member, admin;

-- -----------------------------------------------------------------------------
-- API: sign up, sign in, who am I, plans
-- -----------------------------------------------------------------------------

CREATE FUNCTION api.signup(email text, password text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  problem text;
  new_id uuid;
BEGIN
  email := btrim(email);
  problem := pounce.email_problem(email);
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid email: ' || problem;
  END IF;
  problem := pounce.password_problem(password, email);
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'weak password: ' || problem;
  END IF;
  BEGIN
    INSERT INTO pounce.users (email, password_hash)
    VALUES (email, pounce.hash_password(password))
    RETURNING id INTO new_id;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION USING ERRCODE = '23505', MESSAGE = 'an account with this email already exists',
      HINT = 'sign in with api.login, or use another address';
  END;
  RETURN pounce.session_for(new_id);
END $$;
COMMENT ON FUNCTION api.signup(text, text) IS
  'Create an account (Scout plan) and sign in. Returns {token, user_id, role, tier, expires_at}. '
  'Errors: 400 invalid email or weak password (the message says why), 409 email already registered.';

-- Unknown e-mail and wrong password fail alike, after the same bcrypt work, so neither
-- the answer nor its timing tells whether an address has an account.
CREATE FUNCTION api.login(email text, password text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  account record;
BEGIN
  SELECT u.id, u.password_hash, u.disabled INTO account
  FROM pounce.users AS u WHERE u.email = btrim(login.email)::public.citext;
  IF NOT FOUND THEN
    PERFORM pounce.hash_password(coalesce(password, ''));
    RAISE EXCEPTION USING ERRCODE = '28P01', MESSAGE = 'invalid email or password';
  END IF;
  IF NOT pounce.password_matches(password, account.password_hash) THEN
    RAISE EXCEPTION USING ERRCODE = '28P01', MESSAGE = 'invalid email or password';
  END IF;
  IF account.disabled THEN
    RAISE EXCEPTION USING ERRCODE = '28000', MESSAGE = 'account disabled',
      HINT = 'contact support to re-enable the account';
  END IF;
  UPDATE pounce.users SET last_login_at = now() WHERE id = account.id;
  RETURN pounce.session_for(account.id);
END $$;
COMMENT ON FUNCTION api.login(text, text) IS
  'Sign in. Returns {token, user_id, role, tier, expires_at}; the token is an HS256 JWT for the Authorization header. '
  'Errors: 403 invalid email or password (the same for both), 403 account disabled.';

GRANT EXECUTE ON FUNCTION api.signup(text, text), api.login(text, text) TO anon, member;

-- A fresh token for the signed-in account (the pre-request check has already refused
-- disabled accounts and stale roles), so a client can stay signed in without a password.
CREATE FUNCTION api.refresh_token() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  session jsonb := pounce.session_for(pounce.current_user_id());
BEGIN
  IF session IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'sign in first';
  END IF;
  RETURN session;
END $$;
COMMENT ON FUNCTION api.refresh_token() IS
  'A new token for the signed-in account, with a new expiry. Same answer as api.login.';

CREATE FUNCTION api.change_password(current_password text, new_password text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  account record;
  problem text;
BEGIN
  SELECT u.id, u.email::text AS email, u.password_hash INTO account
  FROM pounce.users AS u WHERE u.id = pounce.current_user_id();
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'sign in first';
  END IF;
  IF NOT pounce.password_matches(current_password, account.password_hash) THEN
    RAISE EXCEPTION USING ERRCODE = '28P01', MESSAGE = 'current password is wrong';
  END IF;
  problem := pounce.password_problem(new_password, account.email);
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'weak password: ' || problem;
  END IF;
  UPDATE pounce.users
  SET password_hash = pounce.hash_password(new_password)
  WHERE id = account.id;
END $$;
COMMENT ON FUNCTION api.change_password(text, text) IS
  'Change your password. Errors: 403 current password is wrong, 400 weak password (the message says why).';

GRANT EXECUTE ON FUNCTION api.refresh_token(), api.change_password(text, text) TO member;

CREATE VIEW api.me WITH (security_invoker = true) AS
SELECT u.id, u.email::text AS email, u.role, u.tier, t.name AS tier_name, u.created_at, u.last_login_at,
       t.watchlist_limit, t.check_interval, t.sniper_alert_limit, t.listing_limit,
       t.api_requests_per_minute, t.health_refreshes_per_hour
FROM pounce.users AS u
JOIN pounce.tiers AS t USING (tier)
WHERE u.id = pounce.current_user_id();
COMMENT ON VIEW api.me IS 'The signed-in account and the limits of its plan (one row; empty for anon).';
GRANT SELECT ON api.me TO member;

CREATE VIEW api.tiers WITH (security_invoker = true) AS
SELECT tier, name, rank, price_usd_month, watchlist_limit, check_interval, sniper_alert_limit,
       listing_limit, api_requests_per_minute, health_refreshes_per_hour
FROM pounce.tiers;
COMMENT ON VIEW api.tiers IS 'Plans (Scout, Trader, Tycoon) and their limits.';
GRANT SELECT ON api.tiers TO anon, member;

-- ---- sql/core/notifications.sql ----
-- =============================================================================
-- Notification center
-- =============================================================================
-- Every area (price alerts, watchlist events, sniper matches) writes here in one
-- set-based INSERT ... SELECT; members read and mark their own through api.notifications.
-- dedup_key makes a fan-out idempotent: a re-run or overlapping job inserts nothing new
-- (INSERT ... ON CONFLICT DO NOTHING against notifications_dedup).
CREATE TABLE pounce.notifications (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     uuid NOT NULL REFERENCES pounce.users ON DELETE CASCADE,
  kind        text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
  payload     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  dedup_key   text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  read_at     timestamptz,
  CHECK (read_at IS NULL OR read_at >= created_at - interval '1 minute')
);
CREATE UNIQUE INDEX notifications_dedup ON pounce.notifications (user_id, kind, dedup_key)
  WHERE dedup_key IS NOT NULL;
-- The notification center's page: newest first per user (keyset on created_at, id).
CREATE INDEX notifications_user_recent ON pounce.notifications (user_id, created_at DESC, id DESC);
-- Unread badge counts and digests.
CREATE INDEX notifications_user_unread ON pounce.notifications (user_id, created_at)
  WHERE read_at IS NULL;
COMMENT ON TABLE pounce.notifications IS 'One notification center for every area; kind says which.';

ALTER TABLE pounce.notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.notifications FORCE ROW LEVEL SECURITY;
CREATE POLICY notifications_own ON pounce.notifications TO member
  USING (user_id = pounce.current_user_id())
  WITH CHECK (user_id = pounce.current_user_id());
CREATE POLICY notifications_internal ON pounce.notifications TO pounce_owner USING (true) WITH CHECK (true);

-- Members read, mark read (read_at only) and delete their own; they never insert.
GRANT SELECT, DELETE ON pounce.notifications TO member;
GRANT UPDATE (read_at) ON pounce.notifications TO member;

-- prune_notifications(keep): delete read notifications older than keep; returns how many.
CREATE FUNCTION pounce.prune_notifications(keep interval DEFAULT interval '180 days') RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (
    DELETE FROM pounce.notifications
    WHERE read_at IS NOT NULL AND created_at < now() - keep
    RETURNING 1)
  SELECT count(*) FROM gone;
END;
COMMENT ON FUNCTION pounce.prune_notifications(interval) IS 'Retention: deletes read notifications older than keep (pg_cron, daily).';

CREATE VIEW api.notifications WITH (security_invoker = true) AS
SELECT id, kind, payload, created_at, read_at
FROM pounce.notifications;
COMMENT ON VIEW api.notifications IS
  'The signed-in member''s notifications. Filter unread with read_at=is.null; '
  'mark one read with PATCH {"read_at": "now()"}-style timestamps; DELETE to dismiss.';
GRANT SELECT, DELETE ON api.notifications TO member;
GRANT UPDATE (read_at) ON api.notifications TO member;

-- mark_notifications_read(): marks every unread notification of the caller read.
CREATE FUNCTION api.mark_notifications_read() RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH marked AS (
    UPDATE pounce.notifications SET read_at = now()
    WHERE read_at IS NULL AND user_id = pounce.current_user_id()
    RETURNING 1)
  SELECT count(*) FROM marked;
END;
COMMENT ON FUNCTION api.mark_notifications_read() IS 'Mark all of your unread notifications read; returns how many changed.';
GRANT EXECUTE ON FUNCTION api.mark_notifications_read() TO member;

-- ---- sql/core/ingest.sql ----
-- =============================================================================
-- Ingestion rejects (shared by every collector.ingest_* function)
-- =============================================================================
-- A malformed row never sinks its batch: it lands here with the reason, verbatim, for
-- an operator to inspect, while the good rows beside it are stored.
CREATE TABLE pounce.ingest_rejects (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source       text NOT NULL,
  reason       text NOT NULL,
  raw          jsonb NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_rejects_source_recent ON pounce.ingest_rejects (source, received_at DESC);
COMMENT ON TABLE pounce.ingest_rejects IS 'Rows refused by collector.ingest_* functions, with the reason and the raw row.';

-- ---- sql/core/cron.sql ----
-- =============================================================================
-- Scheduled jobs (pg_cron)
-- =============================================================================
-- Jobs are declared as rows here, next to nothing else, so an operator reads one table
-- to know what runs when. pounce.sync_cron() makes pg_cron's job list match it; it is
-- run by `pounce db migrate` in the database named by cron.database_name (elsewhere it
-- does nothing). Change a schedule with UPDATE pounce.cron_jobs + SELECT pounce.sync_cron().
CREATE TABLE pounce.cron_jobs (
  jobname      text PRIMARY KEY CHECK (jobname ~ '^pounce\.[a-z_]+$'),
  schedule     text NOT NULL,
  command      text NOT NULL,
  description  text NOT NULL
);
COMMENT ON TABLE pounce.cron_jobs IS 'Declared pg_cron jobs; pounce.sync_cron() applies them.';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.prune_notifications', '17 3 * * *', 'SELECT pounce.prune_notifications()',
   'delete read notifications older than 180 days');

-- sync_cron(): schedule every declared job, unschedule pounce.* jobs no longer declared.
-- Returns the number of declared jobs, or NULL when pg_cron is not in this database.
CREATE FUNCTION pounce.sync_cron() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  IF to_regnamespace('cron') IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM cron.unschedule(j.jobid)
  FROM cron.job AS j
  WHERE j.jobname LIKE 'pounce.%'
    AND j.jobname NOT IN (SELECT jobname FROM pounce.cron_jobs);
  PERFORM cron.schedule(d.jobname, d.schedule, d.command) FROM pounce.cron_jobs AS d;
  RETURN (SELECT count(*) FROM pounce.cron_jobs);
END $$;
COMMENT ON FUNCTION pounce.sync_cron() IS 'Make pg_cron''s jobs match pounce.cron_jobs (superuser; run by pounce db migrate).';
