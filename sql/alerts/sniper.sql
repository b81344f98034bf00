-- =============================================================================
-- Sniper alerts: what a member hunts for on the market
-- =============================================================================
-- A member describes a name they want (keywords, TLDs, price, length, score, ...);
-- pounce.match_alerts() (sql/alerts/matching.sql) meets every new or changed auction
-- and listing with every active alert in one statement and notifies the owners.
-- pounce.alert_accepts() is the one definition of "this item matches these criteria":
-- the matching job, the preview and the benchmark's baseline all call it.

CREATE TABLE pounce.sniper_alerts (
  id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id            uuid NOT NULL DEFAULT pounce.current_user_id() REFERENCES pounce.users ON DELETE CASCADE,
  name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  -- the name must contain at least one keyword (none: any name) and no excluded one
  keywords           text[] NOT NULL DEFAULT '{}' CHECK (cardinality(keywords) <= 20),
  excluded_keywords  text[] NOT NULL DEFAULT '{}' CHECK (cardinality(excluded_keywords) <= 20),
  tlds               text[] CHECK (cardinality(tlds) BETWEEN 1 AND 50),        -- NULL: any TLD
  platforms          text[] CHECK (cardinality(platforms) BETWEEN 1 AND 50),   -- sources; NULL: any
  kind               text CHECK (kind IN ('auction', 'listing')),               -- NULL: both
  max_price          numeric(14, 2) CHECK (max_price >= 0),                     -- USD
  max_length         smallint CHECK (max_length BETWEEN 1 AND 63),
  min_score          smallint CHECK (min_score BETWEEN 0 AND 100),
  no_digits          boolean NOT NULL DEFAULT false,
  no_hyphens         boolean NOT NULL DEFAULT false,
  ending_within      interval CHECK (ending_within > interval '0'),             -- auctions only
  active             boolean NOT NULL DEFAULT true,
  delivery           text NOT NULL DEFAULT 'instant' CHECK (delivery IN ('instant', 'daily', 'weekly')),
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sniper_alerts_user ON pounce.sniper_alerts (user_id, created_at);
-- the matching job reads the active alerts (all of them, every run)
CREATE INDEX sniper_alerts_active ON pounce.sniper_alerts (id) WHERE active;
COMMENT ON TABLE pounce.sniper_alerts IS
  'Members'' sniper alerts: criteria an auction or listing must meet, and how matches are delivered.';

ALTER TABLE pounce.sniper_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.sniper_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY sniper_alerts_own ON pounce.sniper_alerts TO member
  USING (user_id = pounce.current_user_id())
  WITH CHECK (user_id = pounce.current_user_id());
CREATE POLICY sniper_alerts_internal ON pounce.sniper_alerts TO pounce_owner USING (true) WITH CHECK (true);

-- normalize_alert(alert): the criteria as stored: keywords lower-case, distinct and
-- sorted, TLDs as parse_domain spells them (".COM" -> com, IDN -> xn--), platforms
-- lower-case; raises 22023 with the reason when a value cannot be a criterion. Used by
-- the write trigger and by api.alert_preview, so a preview sees what a save would store.
CREATE FUNCTION pounce.normalize_alert(alert pounce.sniper_alerts) RETURNS pounce.sniper_alerts
LANGUAGE plpgsql STABLE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  bad text;
BEGIN
  alert.name := btrim(coalesce(alert.name, 'Alert'));
  alert.keywords := ARRAY(SELECT DISTINCT lower(btrim(k)) FROM unnest(coalesce(alert.keywords, '{}')) AS k
                          WHERE btrim(k) <> '' ORDER BY 1);
  alert.excluded_keywords := ARRAY(SELECT DISTINCT lower(btrim(k)) FROM unnest(coalesce(alert.excluded_keywords, '{}')) AS k
                                   WHERE btrim(k) <> '' ORDER BY 1);
  SELECT k INTO bad FROM unnest(alert.keywords || alert.excluded_keywords) AS k WHERE k !~ '^[a-z0-9-]{1,63}$' LIMIT 1;
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('invalid keyword %L', bad),
      HINT = 'A keyword is part of a name: letters, digits and hyphens.';
  END IF;
  IF alert.tlds IS NOT NULL THEN
    alert.tlds := ARRAY(SELECT DISTINCT pounce.idna_to_ascii(lower(ltrim(btrim(t), '.'))) FROM unnest(alert.tlds) AS t
                        WHERE btrim(t) <> '' ORDER BY 1);
    -- (a public suffix such as co.uk is a TLD here, as parse_domain splits names)
    SELECT t INTO bad FROM unnest(alert.tlds) AS t WHERE t !~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$'
    LIMIT 1;
    IF bad IS NOT NULL THEN
      RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('invalid TLD %L', bad);
    END IF;
    alert.tlds := nullif(alert.tlds, '{}');
  END IF;
  IF alert.platforms IS NOT NULL THEN
    alert.platforms := nullif(ARRAY(SELECT DISTINCT lower(btrim(p)) FROM unnest(alert.platforms) AS p
                                    WHERE btrim(p) <> '' ORDER BY 1), '{}');
  END IF;
  RETURN alert;
END $$;
COMMENT ON FUNCTION pounce.normalize_alert(pounce.sniper_alerts) IS
  'Sniper alert criteria normalised (keywords, TLDs, platforms); raises 22023 on an invalid value.';

-- sniper_alert_write: the door for member writes: normalised criteria, columns members
-- may not set, and the plan's sniper_alert_limit, race-safe: pounce.lock_plan makes two
-- concurrent inserts of one member count one after the other.
CREATE FUNCTION pounce.sniper_alert_write() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  alert_limit integer;
BEGIN
  NEW := pounce.normalize_alert(NEW);
  IF TG_OP = 'INSERT' THEN
    NEW.created_at := now();
    alert_limit := (pounce.lock_plan(NEW.user_id)).sniper_alert_limit;
    IF (SELECT count(*) FROM pounce.sniper_alerts AS a WHERE a.user_id = NEW.user_id) >= alert_limit THEN
      RAISE EXCEPTION USING ERRCODE = 'P0001',
        MESSAGE = format('sniper alert limit reached: your plan allows %s alerts', alert_limit),
        HINT = 'Delete an alert or upgrade your plan.';
    END IF;
  ELSE
    NEW.id := OLD.id;
    NEW.user_id := OLD.user_id;
    NEW.created_at := OLD.created_at;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END $$;
COMMENT ON FUNCTION pounce.sniper_alert_write() IS
  'Trigger: normalised criteria, immutable columns, the plan''s sniper_alert_limit (race-safe).';
CREATE TRIGGER sniper_alerts_write BEFORE INSERT OR UPDATE ON pounce.sniper_alerts
  FOR EACH ROW EXECUTE FUNCTION pounce.sniper_alert_write();

GRANT SELECT, DELETE ON pounce.sniper_alerts TO member;
GRANT INSERT (name, keywords, excluded_keywords, tlds, platforms, kind, max_price, max_length, min_score,
              no_digits, no_hyphens, ending_within, active, delivery) ON pounce.sniper_alerts TO member;
GRANT UPDATE (name, keywords, excluded_keywords, tlds, platforms, kind, max_price, max_length, min_score,
              no_digits, no_hyphens, ending_within, active, delivery) ON pounce.sniper_alerts TO member;

-- alert_accepts(criteria..., item...): whether an item on the market meets an alert's
-- criteria. A single SQL expression, so the planner inlines it into the query that
-- calls it (the matching join evaluates it per candidate pair, never per call).
CREATE FUNCTION pounce.alert_accepts(
    keywords text[], excluded_keywords text[], tlds text[], platforms text[], alert_kind text,
    max_price numeric, max_length smallint, min_score smallint, no_digits boolean, no_hyphens boolean,
    ending_within interval,
    item_kind text, source text, sld text, tld text, price_usd numeric, sld_length smallint,
    pounce_score smallint, has_digit boolean, has_hyphen boolean, end_time timestamptz)
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN (cardinality(keywords) = 0 OR EXISTS (SELECT FROM unnest(keywords) AS k WHERE strpos(sld, k) > 0))
   AND NOT EXISTS (SELECT FROM unnest(excluded_keywords) AS k WHERE strpos(sld, k) > 0)
   AND (tlds IS NULL OR tld = ANY (tlds))
   AND (platforms IS NULL OR source = ANY (platforms))
   AND (alert_kind IS NULL OR alert_kind = item_kind)
   AND (max_price IS NULL OR price_usd <= max_price)
   AND (max_length IS NULL OR sld_length <= max_length)
   AND (min_score IS NULL OR pounce_score >= min_score)
   AND NOT (no_digits AND has_digit)
   AND NOT (no_hyphens AND has_hyphen)
   AND (ending_within IS NULL OR (end_time IS NOT NULL AND end_time <= now() + ending_within));
COMMENT ON FUNCTION pounce.alert_accepts(text[], text[], text[], text[], text, numeric, smallint, smallint, boolean,
                                         boolean, interval, text, text, text, text, numeric, smallint, smallint,
                                         boolean, boolean, timestamptz) IS
  'True when a market item meets a sniper alert''s criteria (the one definition of a match).';

-- ---- API -----------------------------------------------------------------------

CREATE VIEW api.sniper_alerts WITH (security_invoker = true) AS
SELECT id, name, keywords, excluded_keywords, tlds, platforms, kind, max_price, max_length, min_score,
       no_digits, no_hyphens, ending_within, active, delivery, created_at, updated_at
FROM pounce.sniper_alerts;
COMMENT ON VIEW api.sniper_alerts IS
  'Your sniper alerts. POST {"name": "short .com", "keywords": ["cloud"], "tlds": ["com"], "max_price": 500, '
  '"max_length": 8, "no_digits": true, "delivery": "instant"} (every criterion optional; delivery instant, daily '
  'or weekly); PATCH any criterion or "active"; DELETE. An alert matches auctions and listings that are new or '
  'change after it is saved (a price drop counts again); /rpc/alert_preview shows what it would match now. '
  'The plan limits how many alerts you keep (400 "sniper alert limit reached").';
GRANT SELECT, DELETE ON api.sniper_alerts TO member;
GRANT INSERT (name, keywords, excluded_keywords, tlds, platforms, kind, max_price, max_length, min_score,
              no_digits, no_hyphens, ending_within, active, delivery) ON api.sniper_alerts TO member;
GRANT UPDATE (name, keywords, excluded_keywords, tlds, platforms, kind, max_price, max_length, min_score,
              no_digits, no_hyphens, ending_within, active, delivery) ON api.sniper_alerts TO member;

-- alert_preview(criteria): the active market items an alert with these criteria would
-- match right now, best scored first. criteria has the keys of api.sniper_alerts.
CREATE FUNCTION api.alert_preview(criteria jsonb, lim integer DEFAULT 50)
RETURNS TABLE (kind text, id bigint, source text, domain text, price numeric, currency text, price_usd numeric,
               end_time timestamptz, pounce_score smallint, url text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  a pounce.sniper_alerts;
BEGIN
  IF jsonb_typeof(criteria) IS DISTINCT FROM 'object' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'criteria must be a JSON object with the keys of sniper_alerts';
  END IF;
  IF lim IS NULL OR lim NOT BETWEEN 1 AND 200 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'lim must be between 1 and 200';
  END IF;
  BEGIN
    a := jsonb_populate_record(NULL::pounce.sniper_alerts, criteria);
  EXCEPTION WHEN data_exception THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid criteria: ' || SQLERRM;
  END;
  a := pounce.normalize_alert(a);
  RETURN QUERY
  SELECT f.kind, f.id, f.source, f.domain, f.price, f.currency, f.price_usd, f.end_time, f.pounce_score, f.url
  FROM api.market_feed AS f
  WHERE pounce.alert_accepts(a.keywords, a.excluded_keywords, a.tlds, a.platforms, a.kind, a.max_price, a.max_length,
                             a.min_score, coalesce(a.no_digits, false), coalesce(a.no_hyphens, false),
                             a.ending_within, f.kind, f.source, f.sld, f.tld, f.price_usd, f.sld_length,
                             f.pounce_score, f.has_digit, f.has_hyphen, f.end_time)
  ORDER BY f.pounce_score DESC, f.id DESC
  LIMIT lim;
END $$;
COMMENT ON FUNCTION api.alert_preview(jsonb, integer) IS
  'What an alert with these criteria (keys of sniper_alerts: keywords, excluded_keywords, tlds, platforms, kind, '
  'max_price, max_length, min_score, no_digits, no_hyphens, ending_within) would match on the market now; '
  'up to lim (1-200, default 50) items, best scored first. 400 on an invalid criterion.';
GRANT EXECUTE ON FUNCTION api.alert_preview(jsonb, integer) TO member;
