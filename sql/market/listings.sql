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
        allowed := (pounce.lock_plan(NEW.seller_id)).listing_limit;
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
