SET ROLE pounce_owner;

-- ---- sql/alerts/sniper.sql ----
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

-- ---- sql/alerts/matching.sql ----
-- =============================================================================
-- Alert matching: every new or changed market item against every active alert
-- =============================================================================
-- pg_cron runs pounce.match_alerts() every minute. It reads the auctions and listings
-- written since its watermark (updated_at; ingestion sets it whenever price, bids, end
-- time, type, url or status change) and meets them with all active alerts in one
-- statement. The original matched in a Python loop, one query per alert; here the
-- candidate pairs come from joins that find only likely pairs, so the work grows with
-- the matches, not with alerts x items:
--   * alerts with keywords: every substring of an item's name is joined on equality
--     with the alerts' keywords (a name contains a keyword exactly when one of its
--     substrings is that keyword), a hash join;
--   * alerts without keywords: per alert, an index range scan of the changed items on
--     TLD and length (an index on the temporary table of changed items).
-- Each candidate pair is then checked with pounce.alert_accepts(), the one definition.

-- One row per (alert, item) ever matched: a re-run or an overlapping run never adds a
-- second. A price drop of a matched item is a new match: the row takes the new price
-- and matched_at, and the owner is notified again.
CREATE TABLE pounce.alert_matches (
  alert_id     bigint NOT NULL REFERENCES pounce.sniper_alerts ON DELETE CASCADE,
  item_id      bigint NOT NULL,              -- auction or listing (one id space)
  user_id      uuid NOT NULL REFERENCES pounce.users ON DELETE CASCADE,
  item_kind    text NOT NULL CHECK (item_kind IN ('auction', 'listing')),
  domain       text NOT NULL,
  price_usd    numeric(14, 2) NOT NULL,
  first_matched_at timestamptz NOT NULL DEFAULT now(),
  matched_at   timestamptz NOT NULL DEFAULT now(),
  times        integer NOT NULL DEFAULT 1 CHECK (times >= 1),
  PRIMARY KEY (alert_id, item_id)
);
CREATE INDEX alert_matches_user_recent ON pounce.alert_matches (user_id, matched_at DESC);
COMMENT ON TABLE pounce.alert_matches IS
  'Matches of sniper alerts, one row per alert and item; times counts the match and each later price drop.';

ALTER TABLE pounce.alert_matches ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.alert_matches FORCE ROW LEVEL SECURITY;
CREATE POLICY alert_matches_own ON pounce.alert_matches TO member
  USING (user_id = pounce.current_user_id());
CREATE POLICY alert_matches_internal ON pounce.alert_matches TO pounce_owner USING (true) WITH CHECK (true);
GRANT SELECT ON pounce.alert_matches TO member;

CREATE VIEW api.alert_matches WITH (security_invoker = true) AS
SELECT m.alert_id, a.name AS alert_name, m.item_kind, m.item_id, m.domain, m.price_usd, m.first_matched_at,
       m.matched_at, m.times
FROM pounce.alert_matches AS m
JOIN pounce.sniper_alerts AS a ON a.id = m.alert_id;
COMMENT ON VIEW api.alert_matches IS
  'What your sniper alerts matched, newest first with order=matched_at.desc; times > 1 after price drops.';
GRANT SELECT ON api.alert_matches TO member;

-- The job's watermark (one row): items written after matched_through - overlap are read.
CREATE TABLE pounce.alert_match_watermark (
  one              boolean PRIMARY KEY DEFAULT true CHECK (one),
  matched_through  timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pounce.alert_match_watermark DEFAULT VALUES;
COMMENT ON TABLE pounce.alert_match_watermark IS 'Where pounce.match_alerts() stopped (one row).';

-- The job reads the recently written items of both kinds by these.
CREATE INDEX auctions_updated ON pounce.auctions (updated_at);
CREATE INDEX listings_updated ON pounce.listings (updated_at) WHERE status = 'active';

-- match_alerts(overlap): match the items written since the watermark, record the
-- matches, notify (kind sniper.match), queue instant e-mails, advance the watermark.
-- An ingestion that started before the watermark but committed after it wrote an
-- updated_at older than the watermark; `overlap` re-reads that window (recorded
-- matches make the re-read harmless). The FOR UPDATE on the watermark serialises
-- overlapping runs. Returns the counts.
CREATE FUNCTION pounce.match_alerts(overlap interval DEFAULT interval '10 minutes',
    OUT items integer, OUT matches integer, OUT notifications integer, OUT emails integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  since timestamptz;
  started timestamptz := now();
  min_len integer;
  max_len integer;
  t timestamptz[] := ARRAY[clock_timestamp()];
BEGIN
  SELECT w.matched_through - overlap INTO since FROM pounce.alert_match_watermark AS w FOR UPDATE;

  CREATE TEMP TABLE IF NOT EXISTS alert_items (
    kind text, id bigint, source text, domain text, sld text, tld text, price numeric, currency text,
    price_usd numeric, sld_length smallint, pounce_score smallint, has_digit boolean, has_hyphen boolean,
    end_time timestamptz, url text) ON COMMIT DROP;
  TRUNCATE alert_items;
  INSERT INTO alert_items
  SELECT 'auction', a.id, a.platform, a.domain, a.sld, a.tld, a.current_price, a.currency, a.price_usd,
         a.sld_length, a.pounce_score, a.has_digit, a.has_hyphen, a.end_time, a.url
  FROM pounce.auctions AS a
  WHERE a.updated_at > since AND a.status = 'active' AND (a.end_time > now() OR a.end_time IS NULL)
  UNION ALL
  SELECT 'listing', o.id, 'pounce', o.domain, o.sld, o.tld, o.asking_price, o.currency, o.price_usd,
         o.sld_length, o.pounce_score, o.has_digit, o.has_hyphen, NULL, NULL
  FROM pounce.listings AS l JOIN pounce.listing_offers AS o ON o.id = l.id
  WHERE l.updated_at > since AND l.status = 'active';
  GET DIAGNOSTICS items = ROW_COUNT;
  CREATE INDEX IF NOT EXISTS alert_items_tld_length ON alert_items (tld, sld_length);
  CREATE INDEX IF NOT EXISTS alert_items_length ON alert_items (sld_length);
  ANALYZE alert_items;

  CREATE TEMP TABLE IF NOT EXISTS alert_keywords (alert_id bigint, keyword text) ON COMMIT DROP;
  TRUNCATE alert_keywords;
  INSERT INTO alert_keywords
  SELECT a.id, k FROM pounce.sniper_alerts AS a, unnest(a.keywords) AS k
  WHERE a.active AND cardinality(a.keywords) > 0;
  SELECT min(length(keyword)), max(length(keyword)) INTO min_len, max_len FROM alert_keywords;
  ANALYZE alert_keywords;
  t := t || clock_timestamp();

  -- Each step lands in an analyzed temporary table, so the next one is planned on real
  -- row counts (a join of CTEs estimated at a few rows became a nested loop of
  -- thousands squared).
  -- The substrings of each name, of the lengths the keywords have.
  CREATE TEMP TABLE IF NOT EXISTS alert_item_parts (id bigint, part text) ON COMMIT DROP;
  TRUNCATE alert_item_parts;
  INSERT INTO alert_item_parts
  SELECT i.id, substr(i.sld, p, n)
  FROM alert_items AS i,
       generate_series(min_len, least(max_len, length(i.sld))) AS n,
       generate_series(1, length(i.sld) - n + 1) AS p;
  ANALYZE alert_item_parts;

  CREATE TEMP TABLE IF NOT EXISTS alert_candidates (alert_id bigint, item_id bigint) ON COMMIT DROP;
  TRUNCATE alert_candidates;
  INSERT INTO alert_candidates
  -- keyword alerts: a name's substrings meet the keywords (a hash join on equality)
  SELECT DISTINCT k.alert_id, s.id
  FROM alert_item_parts AS s JOIN alert_keywords AS k ON k.keyword = s.part
  UNION ALL
  -- alerts without keywords: an index range scan of the items per alert, on the TLDs
  -- and the length, filtered by price and score (a nested loop in one statement)
  SELECT a.id, i.id
  FROM pounce.sniper_alerts AS a
  CROSS JOIN LATERAL (
    SELECT i.id FROM alert_items AS i
    WHERE (a.tlds IS NULL OR i.tld = ANY (a.tlds)) AND i.sld_length <= coalesce(a.max_length, 63)
      AND i.price_usd <= coalesce(a.max_price, 1e12) AND i.pounce_score >= coalesce(a.min_score, 0)) AS i
  WHERE a.active AND cardinality(a.keywords) = 0;
  ANALYZE alert_candidates;

  -- the candidates that meet every criterion of their alert
  CREATE TEMP TABLE IF NOT EXISTS alert_accepted (
    alert_id bigint, user_id uuid, alert_name text, delivery text, kind text, id bigint, source text, domain text,
    price numeric, currency text, price_usd numeric, end_time timestamptz, pounce_score smallint, url text)
    ON COMMIT DROP;
  TRUNCATE alert_accepted;
  INSERT INTO alert_accepted
  SELECT a.id, a.user_id, a.name, a.delivery, i.kind, i.id, i.source, i.domain, i.price, i.currency, i.price_usd,
         i.end_time, i.pounce_score, i.url
  FROM alert_candidates AS c
  JOIN pounce.sniper_alerts AS a ON a.id = c.alert_id
  JOIN alert_items AS i ON i.id = c.item_id
  JOIN pounce.users AS u ON u.id = a.user_id AND NOT u.disabled
  WHERE pounce.alert_accepts(a.keywords, a.excluded_keywords, a.tlds, a.platforms, a.kind, a.max_price,
                             a.max_length, a.min_score, a.no_digits, a.no_hyphens, a.ending_within,
                             i.kind, i.source, i.sld, i.tld, i.price_usd, i.sld_length, i.pounce_score,
                             i.has_digit, i.has_hyphen, i.end_time);
  ANALYZE alert_accepted;
  t := t || clock_timestamp();

  -- new matches, and price drops of recorded ones
  CREATE TEMP TABLE IF NOT EXISTS alert_recorded (alert_id bigint, item_id bigint, times integer) ON COMMIT DROP;
  TRUNCATE alert_recorded;
  WITH recorded AS (
    INSERT INTO pounce.alert_matches AS m (alert_id, item_id, user_id, item_kind, domain, price_usd)
    SELECT alert_id, id, user_id, kind, domain, price_usd FROM alert_accepted
    ON CONFLICT (alert_id, item_id) DO UPDATE
      SET price_usd = excluded.price_usd, matched_at = now(), times = m.times + 1
      WHERE excluded.price_usd < m.price_usd     -- a price drop: a new match
    RETURNING m.alert_id, m.item_id, m.times)
  INSERT INTO alert_recorded SELECT * FROM recorded;
  GET DIAGNOSTICS matches = ROW_COUNT;
  ANALYZE alert_recorded;

  INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key)
  SELECT x.user_id, 'sniper.match',
         jsonb_build_object('alert_id', x.alert_id, 'alert_name', x.alert_name, 'delivery', x.delivery,
                            'item_kind', x.kind, 'item_id', x.id, 'domain', x.domain, 'source', x.source,
                            'price', x.price, 'currency', x.currency, 'price_usd', x.price_usd,
                            'end_time', x.end_time, 'pounce_score', x.pounce_score, 'url', x.url,
                            'price_drop', r.times > 1),
         'sniper:' || x.alert_id || ':' || x.id || ':' || x.price_usd
  FROM alert_recorded AS r JOIN alert_accepted AS x ON x.alert_id = r.alert_id AND x.id = r.item_id
  ON CONFLICT (user_id, kind, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING;
  GET DIAGNOSTICS notifications = ROW_COUNT;
  t := t || clock_timestamp();

  UPDATE pounce.alert_match_watermark SET matched_through = started, updated_at = now();
  emails := pounce.queue_instant_emails();
  t := t || clock_timestamp();
  -- where the time went, for bench/alerts.py (SET client_min_messages = debug to see it)
  RAISE DEBUG 'match_alerts ms: read %, match %, record+notify %, e-mail %',
    round(extract(epoch FROM t[2] - t[1]) * 1000), round(extract(epoch FROM t[3] - t[2]) * 1000),
    round(extract(epoch FROM t[4] - t[3]) * 1000), round(extract(epoch FROM t[5] - t[4]) * 1000);
END $$;
COMMENT ON FUNCTION pounce.match_alerts(interval) IS
  'pg_cron: match new and changed auctions and listings against all active sniper alerts (set-based), record '
  'matches, notify, queue instant e-mails, advance the watermark. Returns {items, matches, notifications, emails}.';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.match_alerts', '* * * * *', 'SELECT pounce.match_alerts()',
   'match new and changed market items against sniper alerts; notify and queue instant e-mails');

-- ---- sql/alerts/email.sql ----
-- =============================================================================
-- E-mail: preferences, templates, the outbox, digests, unsubscribe, the mailer's API
-- =============================================================================
-- Notifications become e-mail in SQL: urgent ones (a watched domain became available
-- or entered pendingDelete, an instant sniper alert matched) as one e-mail each, the
-- rest in a daily or weekly digest. Every e-mail is rendered from a template (plain
-- text and HTML) into pounce.email_outbox; the mailer collector (`pounce mailer`,
-- collectors/mailer.py) only sends them and reports back.
--
-- Categories (what a member can unsubscribe from): sniper (instant alert e-mails),
-- watch (instant watchlist e-mails), digest (daily and weekly digests).

-- ---- Preferences -------------------------------------------------------------------

-- One row per member who has a preference, an unsubscribe, a bounce or a digest sent;
-- a member without a row has the defaults (daily digest, subscribed to everything).
CREATE TABLE pounce.email_settings (
  user_id                uuid PRIMARY KEY REFERENCES pounce.users ON DELETE CASCADE,
  digest                 text NOT NULL DEFAULT 'daily' CHECK (digest IN ('daily', 'weekly', 'off')),
  unsubscribed           text[] NOT NULL DEFAULT '{}'
                         CHECK (unsubscribed <@ ARRAY['sniper', 'watch', 'digest']::text[]),
  bounced_at             timestamptz,     -- the address refused mail (SMTP 5xx): no more is queued
  last_daily_digest_at   timestamptz,
  last_weekly_digest_at  timestamptz
);
COMMENT ON TABLE pounce.email_settings IS
  'Members'' e-mail preferences, unsubscribes, bounces and digest watermarks (no row: the defaults).';
ALTER TABLE pounce.email_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.email_settings FORCE ROW LEVEL SECURITY;
CREATE POLICY email_settings_own ON pounce.email_settings TO member
  USING (user_id = pounce.current_user_id());
CREATE POLICY email_settings_internal ON pounce.email_settings TO pounce_owner USING (true) WITH CHECK (true);
GRANT SELECT ON pounce.email_settings TO member;

CREATE VIEW api.email_settings WITH (security_invoker = true) AS
SELECT coalesce(s.digest, 'daily') AS digest, coalesce(s.unsubscribed, '{}') AS unsubscribed,
       s.bounced_at, s.last_daily_digest_at, s.last_weekly_digest_at
FROM (SELECT pounce.current_user_id() AS user_id) AS me
LEFT JOIN pounce.email_settings AS s ON s.user_id = me.user_id
WHERE me.user_id IS NOT NULL;
COMMENT ON VIEW api.email_settings IS
  'Your e-mail preferences: digest (daily, weekly, off), the categories you unsubscribed from (sniper, watch, '
  'digest), and when your address last bounced. Change them with /rpc/set_email_settings.';
GRANT SELECT ON api.email_settings TO member;

-- set_email_settings(digest, subscribe, unsubscribe): change your digest frequency and
-- (un)subscribe from categories; a new address after a bounce clears it with clear_bounce.
CREATE FUNCTION api.set_email_settings(digest text DEFAULT NULL, subscribe text[] DEFAULT '{}',
                                       unsubscribe text[] DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  me uuid := pounce.current_user_id();
  out pounce.email_settings;
BEGIN
  IF me IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'sign in first';
  END IF;
  IF digest IS NOT NULL AND digest NOT IN ('daily', 'weekly', 'off') THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('digest must be daily, weekly or off, not %L', digest);
  END IF;
  IF NOT (coalesce(subscribe, '{}') || coalesce(unsubscribe, '{}')) <@ ARRAY['sniper', 'watch', 'digest'] THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'categories are sniper, watch and digest';
  END IF;
  INSERT INTO pounce.email_settings AS s (user_id, digest, unsubscribed)
  VALUES (me, coalesce(set_email_settings.digest, 'daily'),
          ARRAY(SELECT DISTINCT c FROM unnest(unsubscribe) AS c ORDER BY 1))
  ON CONFLICT (user_id) DO UPDATE
    SET digest = coalesce(set_email_settings.digest, s.digest),
        unsubscribed = ARRAY(SELECT DISTINCT c FROM unnest(s.unsubscribed || unsubscribe) AS c
                             WHERE c <> ALL (subscribe) ORDER BY 1)
  RETURNING * INTO out;
  RETURN jsonb_build_object('digest', out.digest, 'unsubscribed', to_jsonb(out.unsubscribed));
END $$;
COMMENT ON FUNCTION api.set_email_settings(text, text[], text[]) IS
  'Set your digest frequency (daily, weekly, off) and subscribe to / unsubscribe from categories '
  '(sniper, watch, digest). Returns {digest, unsubscribed}.';
GRANT EXECUTE ON FUNCTION api.set_email_settings(text, text[], text[]) TO member;

-- ---- Unsubscribe tokens --------------------------------------------------------------
-- A token is base64url("<user id>:<category>") "." base64url(HMAC-SHA256 of that part
-- with the unsubscribe secret): whoever holds the e-mail can unsubscribe without
-- signing in, and nobody can make a token for another member or category.

INSERT INTO pounce.settings (name, value, is_secret) VALUES
  ('unsubscribe_secret', encode(gen_random_bytes(32), 'hex'), true),
  -- where the unsubscribe link points (the frontend calls /rpc/unsubscribe with the token)
  ('app_url', 'http://localhost:3000', false),
  ('email_from', 'Pounce <alerts@pounce.localhost>', false);

-- sign_unsubscribe(user, category, secret): the signed token. One expression, so a
-- query that makes thousands of tokens inlines it and reads the secret once.
CREATE FUNCTION pounce.sign_unsubscribe(user_id uuid, category text, secret text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN pounce.base64url(convert_to(user_id::text || ':' || category, 'UTF8')) || '.'
       || pounce.base64url(public.hmac(convert_to(pounce.base64url(convert_to(user_id::text || ':' || category, 'UTF8')),
                                                  'UTF8'), convert_to(secret, 'UTF8'), 'sha256'));
COMMENT ON FUNCTION pounce.sign_unsubscribe(uuid, text, text) IS
  'Unsubscribe token for a member and category, signed (HMAC-SHA256) with the given secret.';

-- unsubscribe_url(user, category, secret, app_url): the link an e-mail carries.
CREATE FUNCTION pounce.unsubscribe_url(user_id uuid, category text, secret text, app_url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN rtrim(app_url, '/') || '/unsubscribe?token=' || pounce.sign_unsubscribe(user_id, category, secret);
COMMENT ON FUNCTION pounce.unsubscribe_url(uuid, text, text, text) IS 'The unsubscribe link of an e-mail.';

-- unsubscribe_token(user, category): the token, with the configured secret.
CREATE FUNCTION pounce.unsubscribe_token(user_id uuid, category text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
RETURN pounce.sign_unsubscribe(user_id, category, pounce.setting('unsubscribe_secret'));
COMMENT ON FUNCTION pounce.unsubscribe_token(uuid, text) IS 'HMAC-signed unsubscribe token for a member and category.';

-- unsubscribe(token): anonymous and idempotent: a second call changes nothing and
-- answers the same. A forged or altered token is refused (400).
CREATE FUNCTION api.unsubscribe(token text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  part text := split_part(coalesce(token, ''), '.', 1);
  claim text;
  member uuid;
  category text;
BEGIN
  IF token IS NULL OR token !~ '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
     OR split_part(token, '.', 2) <> pounce.base64url(public.hmac(convert_to(part, 'UTF8'),
                                     convert_to(pounce.setting('unsubscribe_secret'), 'UTF8'), 'sha256')) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid unsubscribe token',
      HINT = 'Use the link from the e-mail unchanged.';
  END IF;
  claim := convert_from(decode(translate(part, '-_', '+/') || repeat('=', (4 - length(part) % 4) % 4), 'base64'), 'UTF8');
  member := split_part(claim, ':', 1)::uuid;
  category := split_part(claim, ':', 2);
  INSERT INTO pounce.email_settings AS s (user_id, unsubscribed)
  SELECT u.id, ARRAY[category] FROM pounce.users AS u WHERE u.id = member
  ON CONFLICT (user_id) DO UPDATE
    SET unsubscribed = ARRAY(SELECT DISTINCT c FROM unnest(s.unsubscribed || ARRAY[category]) AS c ORDER BY 1)
    WHERE NOT (category = ANY (s.unsubscribed));
  RETURN jsonb_build_object('unsubscribed', true, 'category', category);
END $$;
COMMENT ON FUNCTION api.unsubscribe(text) IS
  'One-click unsubscribe with the token from an e-mail''s link (no sign-in): stops that category of e-mail '
  '(sniper, watch or digest) for its member. Idempotent. 400 "invalid unsubscribe token" for a forged or '
  'altered token. Returns {unsubscribed, category}.';
GRANT EXECUTE ON FUNCTION api.unsubscribe(text) TO anon, member;

-- ---- Templates -----------------------------------------------------------------------
-- {{name}} is replaced by a value; in HTML every value is escaped except *_html ones
-- (already rendered HTML, such as a digest's item list).
CREATE TABLE pounce.email_templates (
  name       text PRIMARY KEY CHECK (name ~ '^[a-z]+(\.[a-z_]+)+$'),
  subject    text NOT NULL,
  body_text  text NOT NULL,
  body_html  text NOT NULL
);
COMMENT ON TABLE pounce.email_templates IS
  'E-mail templates ({{placeholders}}): instant.<notification kind> and digest.daily / digest.weekly.';

INSERT INTO pounce.email_templates VALUES
('instant.sniper.match',
 'Pounce alert "{{alert_name}}": {{domain}} for {{price}}',
 E'Your sniper alert "{{alert_name}}" matched {{domain}}.\n\n{{summary}}\n\n{{link}}\n\n'
 || E'--\nYou get this because the alert delivers instantly. Stop these e-mails: {{unsubscribe_url}}\n',
 E'<!doctype html>\n<html><body>\n<p>Your sniper alert <strong>{{alert_name}}</strong> matched '
 || E'<strong>{{domain}}</strong>.</p>\n<p>{{summary}}</p>\n<p><a href="{{link}}">{{link}}</a></p>\n'
 || E'<hr><p style="font-size:small">You get this because the alert delivers instantly. '
 || E'<a href="{{unsubscribe_url}}">Unsubscribe</a></p>\n</body></html>\n'),
('instant.watch.available',
 '{{domain}} is available to register',
 E'{{domain}}, on your watchlist, is available to register now.\n\n'
 || E'--\nWatchlist e-mails: unsubscribe at {{unsubscribe_url}}\n',
 E'<!doctype html>\n<html><body>\n<p><strong>{{domain}}</strong>, on your watchlist, is available to register now.</p>\n'
 || E'<hr><p style="font-size:small"><a href="{{unsubscribe_url}}">Unsubscribe</a> from watchlist e-mails</p>\n</body></html>\n'),
('instant.watch.pending_delete',
 '{{domain}} entered pendingDelete',
 E'{{domain}}, on your watchlist, entered pendingDelete: expected to drop on {{predicted_drop_on}}.\n\n'
 || E'--\nWatchlist e-mails: unsubscribe at {{unsubscribe_url}}\n',
 E'<!doctype html>\n<html><body>\n<p><strong>{{domain}}</strong>, on your watchlist, entered pendingDelete: '
 || E'expected to drop on {{predicted_drop_on}}.</p>\n'
 || E'<hr><p style="font-size:small"><a href="{{unsubscribe_url}}">Unsubscribe</a> from watchlist e-mails</p>\n</body></html>\n'),
('digest.daily',
 'Your Pounce daily digest: {{count}} updates',
 E'Since your last digest ({{since}}):\n\n{{items}}\n\n--\nStop digests: {{unsubscribe_url}}\n',
 E'<!doctype html>\n<html><body>\n<p>Since your last digest ({{since}}):</p>\n<ul>\n{{items_html}}</ul>\n'
 || E'<hr><p style="font-size:small"><a href="{{unsubscribe_url}}">Unsubscribe</a> from digests</p>\n</body></html>\n'),
('digest.weekly',
 'Your Pounce weekly digest: {{count}} updates',
 E'Since your last digest ({{since}}):\n\n{{items}}\n\n--\nStop digests: {{unsubscribe_url}}\n',
 E'<!doctype html>\n<html><body>\n<p>Since your last digest ({{since}}):</p>\n<ul>\n{{items_html}}</ul>\n'
 || E'<hr><p style="font-size:small"><a href="{{unsubscribe_url}}">Unsubscribe</a> from digests</p>\n</body></html>\n');

CREATE FUNCTION pounce.html_escape(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN replace(replace(replace(replace(replace(value, '&', '&amp;'), '<', '&lt;'), '>', '&gt;'), '"', '&quot;'),
               '''', '&#39;');
COMMENT ON FUNCTION pounce.html_escape(text) IS 'Text made safe for HTML element content and attribute values.';

-- render_template(template, vars, html): {{key}} replaced by vars->>key ('' for NULL);
-- with html, values are escaped unless the key ends in _html.
CREATE FUNCTION pounce.render_template(template text, vars jsonb, html boolean) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  k text;
  v text;
BEGIN
  FOR k, v IN SELECT key, value FROM jsonb_each_text(vars) LOOP
    template := replace(template, '{{' || k || '}}',
                        CASE WHEN html AND k NOT LIKE '%\_html' THEN pounce.html_escape(coalesce(v, ''))
                             ELSE coalesce(v, '') END);
  END LOOP;
  RETURN template;
END $$;
COMMENT ON FUNCTION pounce.render_template(text, jsonb, boolean) IS
  'A template with {{key}} placeholders filled from vars (HTML-escaped when html, except *_html keys).';

-- notification_line(kind, payload): one notification as one line of a digest.
CREATE FUNCTION pounce.notification_line(kind text, payload jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE kind
  WHEN 'sniper.match' THEN format('%s: %s on %s for %s %s%s (alert "%s")', CASE WHEN payload ->> 'price_drop' = 'true'
                                  THEN 'Price drop' ELSE 'Match' END, payload ->> 'domain', payload ->> 'source',
                                  payload ->> 'price', payload ->> 'currency',
                                  coalesce(', ends ' || (payload ->> 'end_time'), ''), payload ->> 'alert_name')
  WHEN 'tld.price_change' THEN format('.%s at %s: %s %s -> %s %s', payload ->> 'tld', payload ->> 'registrar',
                                      payload ->> 'kind', payload ->> 'old_price', payload ->> 'new_price',
                                      payload ->> 'currency')
  WHEN 'watch.expiring' THEN format('%s expires within %s days (%s)', payload ->> 'domain', payload ->> 'within_days',
                                    payload ->> 'expires_at')
  WHEN 'watch.available' THEN format('%s is available to register', payload ->> 'domain')
  WHEN 'watch.pending_delete' THEN format('%s entered pendingDelete', payload ->> 'domain')
  ELSE coalesce(payload ->> 'domain' || ': ', '') || replace(kind, '.', ' ')
END;
COMMENT ON FUNCTION pounce.notification_line(text, jsonb) IS 'One line of a digest for a notification.';

-- email_category(kind, payload): the instant e-mail category of a notification, NULL
-- when it waits for a digest.
CREATE FUNCTION pounce.email_category(kind text, payload jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE
  WHEN kind IN ('watch.available', 'watch.pending_delete') THEN 'watch'
  WHEN kind = 'sniper.match' AND payload ->> 'delivery' = 'instant' THEN 'sniper'
END;
COMMENT ON FUNCTION pounce.email_category(text, jsonb) IS
  'sniper or watch for notifications e-mailed at once; NULL for those that go into digests.';

-- ---- The outbox ------------------------------------------------------------------------
-- Sending state: queued -> sending (claimed by one mailer) -> sent; or back to queued
-- with a backoff after a temporary failure; failed after max_attempts; bounced on a
-- permanent refusal (SMTP 5xx). message_id is fixed when the row is made, so every
-- attempt sends the same Message-ID and a mailer restarting after a crash recognises
-- what it had sent (collectors/mailer.py: its journal) instead of sending it again.
CREATE TABLE pounce.email_outbox (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id          uuid NOT NULL REFERENCES pounce.users ON DELETE CASCADE,
  to_address       text NOT NULL,
  category         text NOT NULL CHECK (category IN ('sniper', 'watch', 'digest')),
  template         text NOT NULL,
  subject          text NOT NULL,
  body_text        text NOT NULL,
  body_html        text NOT NULL,
  unsubscribe_url  text NOT NULL,
  message_id       text NOT NULL UNIQUE DEFAULT '<' || encode(gen_random_bytes(12), 'hex') || '@pounce>',
  notification_id  bigint UNIQUE,          -- instant e-mails: one per notification
  digest_key       text UNIQUE,            -- digests: one per member, frequency and period
  status           text NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'bounced')),
  attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts     integer NOT NULL DEFAULT 8 CHECK (max_attempts >= 1),
  run_at           timestamptz NOT NULL DEFAULT now(),
  locked_by        text,
  locked_at        timestamptz,
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  sent_at          timestamptz,
  CHECK ((status = 'sending') = (locked_by IS NOT NULL)),
  CHECK ((notification_id IS NULL) <> (digest_key IS NULL))
);
CREATE INDEX email_outbox_ready ON pounce.email_outbox (run_at, id) WHERE status = 'queued';
CREATE INDEX email_outbox_sending ON pounce.email_outbox (locked_by) WHERE status = 'sending';
CREATE INDEX email_outbox_user ON pounce.email_outbox (user_id, created_at DESC);
COMMENT ON TABLE pounce.email_outbox IS
  'E-mails to send, rendered; the mailer collector claims, sends and marks them (exactly once per Message-ID).';
ALTER TABLE pounce.email_outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.email_outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY email_outbox_internal ON pounce.email_outbox TO pounce_owner USING (true) WITH CHECK (true);

-- Instant e-mails look at the recent urgent notifications only (digest-bound sniper
-- matches, however many, are not in this index).
-- (Plain operators, no function: members updating their notifications evaluate the
-- predicate with their own privileges.) Keep it equal to email_category().
CREATE INDEX notifications_urgent_recent ON pounce.notifications (created_at)
  WHERE kind IN ('watch.available', 'watch.pending_delete')
     OR (kind = 'sniper.match' AND payload ->> 'delivery' = 'instant');

-- queue_instant_emails(lookback): one e-mail per urgent notification of the last
-- lookback that has none yet, for members subscribed to its category whose address
-- has not bounced. Idempotent (one e-mail per notification: a late-committed
-- notification is picked up by the next run). Returns how many were queued.
CREATE FUNCTION pounce.queue_instant_emails(lookback interval DEFAULT interval '1 day') RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  -- One run at a time: a run that finds another in flight (the pg_cron job beside the
  -- one match_alerts makes, or a long backlog overrunning the minute) queues nothing
  -- rather than waiting on the same notifications' outbox rows; the next run catches up.
  WITH conf AS MATERIALIZED (
    SELECT pounce.setting('unsubscribe_secret') AS secret, pounce.setting('app_url') AS app_url
    WHERE pg_try_advisory_xact_lock(hashtext('pounce.queue_instant_emails'))),
  due AS (
    SELECT n.id, n.user_id, n.kind, n.payload, u.email::text AS email, c.category,
           pounce.unsubscribe_url(n.user_id, c.category, conf.secret, conf.app_url) AS unsubscribe_url,
           conf.app_url
    FROM pounce.notifications AS n
    CROSS JOIN conf
    CROSS JOIN LATERAL (SELECT pounce.email_category(n.kind, n.payload) AS category) AS c
    JOIN pounce.users AS u ON u.id = n.user_id AND NOT u.disabled
    LEFT JOIN pounce.email_settings AS s ON s.user_id = n.user_id
    WHERE n.created_at > now() - lookback
      -- the partial index's predicate: the notifications email_category() sends at once
      AND (n.kind IN ('watch.available', 'watch.pending_delete')
           OR (n.kind = 'sniper.match' AND n.payload ->> 'delivery' = 'instant'))
      AND NOT (c.category = ANY (coalesce(s.unsubscribed, '{}')))
      AND s.bounced_at IS NULL
      AND NOT EXISTS (SELECT FROM pounce.email_outbox AS o WHERE o.notification_id = n.id)
    OFFSET 0),  -- (computed once per row, not once per reference)
  vars AS (
    SELECT d.*, t.name AS template, t.subject AS t_subject, t.body_text AS t_text, t.body_html AS t_html,
           jsonb_build_object(
             'domain', d.payload ->> 'domain', 'alert_name', d.payload ->> 'alert_name',
             'predicted_drop_on', d.payload ->> 'predicted_drop_on',
             'unsubscribe_url', d.unsubscribe_url,
             'price', (d.payload ->> 'price') || ' ' || (d.payload ->> 'currency'),
             'summary', pounce.notification_line(d.kind, d.payload),
             'link', coalesce(d.payload ->> 'url', rtrim(d.app_url, '/') || '/market/' || (d.payload ->> 'domain'))) AS v
    FROM due AS d JOIN pounce.email_templates AS t ON t.name = 'instant.' || d.kind
    OFFSET 0),
  queued AS (
    INSERT INTO pounce.email_outbox (user_id, to_address, category, template, subject, body_text, body_html,
                                     unsubscribe_url, notification_id)
    SELECT user_id, email, category, template, pounce.render_template(t_subject, v, false),
           pounce.render_template(t_text, v, false), pounce.render_template(t_html, v, true), unsubscribe_url, id
    FROM vars
    ON CONFLICT (notification_id) DO NOTHING
    RETURNING 1)
  SELECT count(*)::integer FROM queued;
END;
COMMENT ON FUNCTION pounce.queue_instant_emails(interval) IS
  'Queue one rendered e-mail per recent urgent notification (watch.available, watch.pending_delete, instant '
  'sniper.match) not yet e-mailed; returns how many.';

-- queue_digests(frequency): for every member whose digest of this frequency has
-- something since the last one, one rendered e-mail grouping it all; then the members'
-- watermarks move. A notification belongs to a digest by its alert's delivery (sniper
-- matches) or else by the member's digest preference; urgent ones were e-mailed at
-- once and are left out. At most one digest per member and period (digest_key), so a
-- second run the same day queues nothing. Returns how many digests were queued.
CREATE FUNCTION pounce.queue_digests(frequency text DEFAULT 'daily') RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
SET work_mem = '256MB'  -- 100,000 members' items group in memory, not in sort files
AS $$
DECLARE
  period interval;
  queued integer;
  secret text := pounce.setting('unsubscribe_secret');
  app_url text := pounce.setting('app_url');
BEGIN
  CASE frequency
    WHEN 'daily' THEN period := interval '1 day';
    WHEN 'weekly' THEN period := interval '7 days';
    ELSE RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'frequency must be daily or weekly';
  END CASE;

  CREATE TEMP TABLE IF NOT EXISTS digest_members (user_id uuid, email text, pref text, since timestamptz)
    ON COMMIT DROP;
  TRUNCATE digest_members;
  INSERT INTO digest_members
  SELECT u.id, u.email::text, coalesce(s.digest, 'daily'),
         greatest(coalesce(CASE frequency WHEN 'daily' THEN s.last_daily_digest_at ELSE s.last_weekly_digest_at END,
                           now() - period), now() - 2 * period)
  FROM pounce.users AS u
  LEFT JOIN pounce.email_settings AS s ON s.user_id = u.id
  WHERE NOT u.disabled AND s.bounced_at IS NULL AND NOT ('digest' = ANY (coalesce(s.unsubscribed, '{}')));
  ANALYZE digest_members;

  -- each member's news, grouped and rendered as lists
  CREATE TEMP TABLE IF NOT EXISTS digest_news (user_id uuid, email text, since timestamptz, n bigint,
                                               items_text text, items_html text) ON COMMIT DROP;
  TRUNCATE digest_news;
  INSERT INTO digest_news
  SELECT i.user_id, min(i.email), min(i.since), count(*),
         string_agg('- ' || i.line, E'\n' ORDER BY i.created_at, i.id),
         string_agg('<li>' || pounce.html_escape(i.line) || E'</li>\n', '' ORDER BY i.created_at, i.id)
  FROM (SELECT m.user_id, m.email, m.since, n.created_at, n.id, pounce.notification_line(n.kind, n.payload) AS line
        FROM digest_members AS m
        JOIN pounce.notifications AS n ON n.user_id = m.user_id AND n.created_at > m.since
        WHERE pounce.email_category(n.kind, n.payload) IS NULL
          AND CASE WHEN n.kind = 'sniper.match' THEN n.payload ->> 'delivery' ELSE m.pref END = frequency) AS i
  GROUP BY i.user_id;

  WITH vars AS (
    SELECT d.user_id, d.email, x.unsubscribe_url,
           jsonb_build_object('count', d.n, 'items', d.items_text, 'items_html', d.items_html,
                              'since', to_char(timezone('UTC', d.since), 'YYYY-MM-DD HH24:MI "UTC"'),
                              'unsubscribe_url', x.unsubscribe_url) AS v
    FROM digest_news AS d
    CROSS JOIN LATERAL (SELECT pounce.unsubscribe_url(d.user_id, 'digest', secret, app_url) AS unsubscribe_url
                        OFFSET 0) AS x),
  queued AS (
    INSERT INTO pounce.email_outbox (user_id, to_address, category, template, subject, body_text, body_html,
                                     unsubscribe_url, digest_key)
    SELECT v.user_id, v.email, 'digest', t.name,
           pounce.render_template(t.subject, v.v, false), pounce.render_template(t.body_text, v.v, false),
           pounce.render_template(t.body_html, v.v, true), v.unsubscribe_url,
           'digest:' || frequency || ':' || v.user_id || ':' || to_char(timezone('UTC', now()), 'YYYY-MM-DD')
    FROM vars AS v
    JOIN pounce.email_templates AS t ON t.name = 'digest.' || frequency
    ON CONFLICT (digest_key) DO NOTHING
    RETURNING 1)
  SELECT count(*) INTO queued FROM queued;

  -- every member looked at has had their digest up to now (an empty one is no e-mail)
  INSERT INTO pounce.email_settings AS s (user_id, last_daily_digest_at, last_weekly_digest_at)
  SELECT m.user_id, CASE frequency WHEN 'daily' THEN now() END, CASE frequency WHEN 'weekly' THEN now() END
  FROM digest_members AS m
  ON CONFLICT (user_id) DO UPDATE
    SET last_daily_digest_at = coalesce(excluded.last_daily_digest_at, s.last_daily_digest_at),
        last_weekly_digest_at = coalesce(excluded.last_weekly_digest_at, s.last_weekly_digest_at);
  RETURN queued;
END $$;
COMMENT ON FUNCTION pounce.queue_digests(text) IS
  'pg_cron: queue one digest e-mail (daily or weekly) per member with news since their last one; returns how many.';

-- prune_email_outbox(keep): sent, bounced and failed e-mails are kept for keep.
CREATE FUNCTION pounce.prune_email_outbox(keep interval DEFAULT interval '30 days') RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (
    DELETE FROM pounce.email_outbox
    WHERE status IN ('sent', 'bounced', 'failed') AND created_at < now() - keep
    RETURNING 1)
  SELECT count(*) FROM gone;
END;
COMMENT ON FUNCTION pounce.prune_email_outbox(interval) IS 'Retention of the outbox: finished e-mails older than keep.';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.queue_instant_emails', '* * * * *', 'SELECT pounce.queue_instant_emails()',
   'queue instant e-mails for urgent notifications (watchlist drops, instant sniper alerts)'),
  ('pounce.queue_daily_digests', '0 7 * * *', 'SELECT pounce.queue_digests(''daily'')',
   'queue the daily digest e-mails'),
  ('pounce.queue_weekly_digests', '0 7 * * 1', 'SELECT pounce.queue_digests(''weekly'')',
   'queue the weekly digest e-mails (Mondays)'),
  ('pounce.prune_email_outbox', '41 3 * * *', 'SELECT pounce.prune_email_outbox()',
   'delete finished e-mails older than 30 days');

-- ---- The mailer's interface (collector role) -------------------------------------------

-- claim_emails(mailer, n): up to n queued e-mails, now in state sending and locked by
-- this mailer (FOR UPDATE SKIP LOCKED: any number of mailers, none gets the same row).
CREATE FUNCTION collector.claim_emails(mailer text, n integer DEFAULT 20)
RETURNS TABLE (id bigint, message_id text, to_address text, subject text, body_text text, body_html text,
               unsubscribe_url text, attempts integer)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  UPDATE pounce.email_outbox AS o
  SET status = 'sending', locked_by = claim_emails.mailer, locked_at = now(), attempts = o.attempts + 1
  FROM (SELECT q.id FROM pounce.email_outbox AS q
        WHERE q.status = 'queued' AND q.run_at <= now()
        ORDER BY q.run_at, q.id
        LIMIT claim_emails.n
        FOR UPDATE SKIP LOCKED) AS c
  WHERE o.id = c.id
  RETURNING o.id, o.message_id, o.to_address, o.subject, o.body_text, o.body_html, o.unsubscribe_url, o.attempts;
END;
COMMENT ON FUNCTION collector.claim_emails(text, integer) IS
  'Claim up to n queued e-mails for this mailer (state sending); returns what to send.';

-- emails_sent(mailer, message_ids): the SMTP server accepted these; mark them sent.
-- Only rows in state sending change, so reporting twice (after a crash) is harmless.
CREATE FUNCTION collector.emails_sent(mailer text, message_ids text[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH done AS (
    UPDATE pounce.email_outbox AS o
    SET status = 'sent', sent_at = now(), locked_by = NULL, locked_at = NULL, last_error = NULL
    WHERE o.message_id = ANY (emails_sent.message_ids) AND o.status = 'sending'
    RETURNING 1)
  SELECT count(*)::integer FROM done;
END;
COMMENT ON FUNCTION collector.emails_sent(text, text[]) IS 'Mark e-mails sent by Message-ID (idempotent).';

-- emails_failed(mailer, ids, errors, permanent): a permanent refusal (SMTP 5xx) marks
-- the e-mail bounced and the address as bouncing; a temporary failure queues it again
-- after pounce.backoff(attempts), and after max_attempts it is failed.
CREATE FUNCTION collector.emails_failed(mailer text, ids bigint[], errors text[], permanent boolean[])
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH f AS (
    SELECT * FROM unnest(ids, errors, permanent) AS f(id, error, permanent)),
  changed AS (
    UPDATE pounce.email_outbox AS o
    SET status = CASE WHEN f.permanent THEN 'bounced' WHEN o.attempts >= o.max_attempts THEN 'failed'
                      ELSE 'queued' END,
        run_at = CASE WHEN f.permanent OR o.attempts >= o.max_attempts THEN o.run_at
                      ELSE now() + pounce.backoff(o.attempts) END,
        last_error = f.error, locked_by = NULL, locked_at = NULL
    FROM f
    WHERE o.id = f.id AND o.status = 'sending' AND o.locked_by = emails_failed.mailer
    RETURNING o.user_id, o.status),
  bounced AS (
    INSERT INTO pounce.email_settings AS s (user_id, bounced_at)
    SELECT DISTINCT user_id, now() FROM changed WHERE status = 'bounced'
    ON CONFLICT (user_id) DO UPDATE SET bounced_at = excluded.bounced_at
    RETURNING 1)
  SELECT count(*)::integer FROM changed;
END;
COMMENT ON FUNCTION collector.emails_failed(text, bigint[], text[], boolean[]) IS
  'Report failed sends: permanent -> bounced (address marked), else retried with backoff until max_attempts.';

-- recover_emails(mailer, sent_message_ids): on start, after a crash. The mailer's
-- journal names the e-mails the server had accepted before the crash: they are marked
-- sent, not sent again; the rest of this mailer's e-mails in state sending were never
-- accepted and are queued again. Returns {sent, requeued}.
CREATE FUNCTION collector.recover_emails(mailer text, sent_message_ids text[]) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  sent integer;
  requeued integer;
BEGIN
  sent := collector.emails_sent(mailer, sent_message_ids);
  UPDATE pounce.email_outbox AS o
  SET status = 'queued', locked_by = NULL, locked_at = NULL
  WHERE o.status = 'sending' AND o.locked_by = recover_emails.mailer;
  GET DIAGNOSTICS requeued = ROW_COUNT;
  RETURN jsonb_build_object('sent', sent, 'requeued', requeued);
END $$;
COMMENT ON FUNCTION collector.recover_emails(text, text[]) IS
  'After a mailer restart: mark its journalled e-mails sent, queue its other unfinished ones again.';

CREATE FUNCTION collector.email_from() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
RETURN pounce.setting('email_from');
COMMENT ON FUNCTION collector.email_from() IS 'The From address of Pounce''s e-mails (setting email_from).';

GRANT EXECUTE ON FUNCTION collector.claim_emails(text, integer), collector.emails_sent(text, text[]),
                          collector.emails_failed(text, bigint[], text[], boolean[]),
                          collector.recover_emails(text, text[]), collector.email_from() TO collector;
