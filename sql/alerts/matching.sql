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
