-- =============================================================================
-- TLD price changes: LAG-based detection, the change log, price alerts
-- =============================================================================
-- The original ran one query per (TLD, registrar) pair for its last two prices. Here one
-- window query over the new history rows (and the row before each) yields every change
-- since the watermark; the pg_cron job appends them to pounce.price_changes, fans them
-- out to subscribers and advances the watermark, all in one transaction.

-- -----------------------------------------------------------------------------
-- The change log
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.price_changes (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  price_id      bigint NOT NULL UNIQUE REFERENCES pounce.tld_prices ON DELETE CASCADE,  -- the new price: one event each
  tld           text NOT NULL,
  registrar     text NOT NULL,
  kind          text NOT NULL,
  old_price     numeric(12,2),
  old_currency  text,
  new_price     numeric(12,2),
  new_currency  text,
  change        numeric(12,2),
  change_pct    numeric(10,2),
  direction     text NOT NULL CHECK (direction IN ('up', 'down', 'added', 'withdrawn', 'changed')),
  observed_at   timestamptz NOT NULL,
  detected_at   timestamptz NOT NULL DEFAULT now()
);
-- Recent changes (api.price_changes's default order) and per-TLD recent changes.
CREATE INDEX price_changes_recent ON pounce.price_changes (observed_at DESC, id DESC);
CREATE INDEX price_changes_tld_recent ON pounce.price_changes (tld, observed_at DESC);
COMMENT ON TABLE pounce.price_changes IS
  'Detected price changes of offers, one per new price row (old -> new, absolute and percent change, direction).';
COMMENT ON COLUMN pounce.price_changes.change IS
  'new_price - old_price in new_currency (the old price converted through usd_rate when the currency changed).';
COMMENT ON COLUMN pounce.price_changes.direction IS
  'up, down, added (new offer or re-offered), withdrawn, or changed (currency changed, no rate to compare).';

-- price_change_events(after_id, through_id): the changes that the history rows with
-- after_id < id <= through_id record, computed with LAG over each offer's history in
-- time order. Rows whose price and currency equal their predecessor's (only the
-- promotion changed) are no price change and yield nothing.
-- Two sources feed the one window, and only one of them runs (the other's one-time
-- filter is false): from the start (after_id = 0), the whole history in the order of
-- tld_prices_offer_timeline, an index-only scan with no sort; after a watermark, the new
-- rows plus each of their offers' latest row at or below after_id (one index probe per
-- offer), sorted (a day is some thousands of rows). Partitions are offer ids (one
-- integer to compare per row); the ROWS frame spares the window its peer checks.
-- No SET clauses (search_path is bound at creation in a BEGIN ATOMIC body): they would
-- keep the planner from inlining the function into the caller's query, and a
-- non-inlined set-returning function materialises every event before the caller reads
-- one (3.9 M events from the start: twice the time of the query itself).
CREATE FUNCTION pounce.price_change_events(after_id bigint, through_id bigint)
RETURNS TABLE (price_id bigint, tld text, registrar text, kind text,
               old_price numeric, old_currency text, new_price numeric, new_currency text,
               change numeric, change_pct numeric, direction text, observed_at timestamptz)
LANGUAGE sql STABLE
BEGIN ATOMIC
  WITH fresh AS (
    SELECT p.id, p.offer_id, p.tld, p.registrar, p.kind, p.price, p.currency, p.observed_at
    FROM pounce.tld_prices AS p
    WHERE p.id > price_change_events.after_id AND p.id <= price_change_events.through_id
      AND price_change_events.after_id > 0
  ),
  before AS (
    SELECT b.id, b.offer_id, b.tld, b.registrar, b.kind, b.price, b.currency, b.observed_at
    FROM (SELECT DISTINCT f.offer_id FROM fresh AS f) AS o
    CROSS JOIN LATERAL (
      SELECT p.id, p.offer_id, p.tld, p.registrar, p.kind, p.price, p.currency, p.observed_at
      FROM pounce.tld_prices AS p
      WHERE p.offer_id = o.offer_id AND p.id <= price_change_events.after_id
      ORDER BY p.observed_at DESC
      LIMIT 1) AS b
  ),
  history AS (
    SELECT p.id, p.tld, p.registrar, p.kind, p.price, p.currency, p.observed_at,
           lag(p.id) OVER w AS prev_id, lag(p.price) OVER w AS prev_price, lag(p.currency) OVER w AS prev_currency
    FROM pounce.tld_prices AS p
    WHERE price_change_events.after_id = 0 AND p.id <= price_change_events.through_id
    WINDOW w AS (PARTITION BY p.offer_id ORDER BY p.observed_at ROWS UNBOUNDED PRECEDING)
    UNION ALL
    SELECT h.id, h.tld, h.registrar, h.kind, h.price, h.currency, h.observed_at,
           lag(h.id) OVER w, lag(h.price) OVER w, lag(h.currency) OVER w
    FROM (SELECT * FROM fresh UNION ALL SELECT * FROM before) AS h
    WINDOW w AS (PARTITION BY h.offer_id ORDER BY h.observed_at ROWS UNBOUNDED PRECEDING)
  ),
  compared AS (
    SELECT h.*,
           -- the old price in the new currency (NULL when a rate is missing)
           CASE WHEN h.prev_currency IS NULL OR h.currency IS NULL OR h.prev_currency = h.currency THEN h.prev_price
                ELSE round(h.prev_price * (SELECT c.usd_rate FROM pounce.currencies AS c WHERE c.code = h.prev_currency)
                           / (SELECT c.usd_rate FROM pounce.currencies AS c WHERE c.code = h.currency), 2)
           END AS prev_in_new
    FROM history AS h
    WHERE h.id > price_change_events.after_id
      AND (h.prev_id IS NULL OR h.price IS DISTINCT FROM h.prev_price OR h.currency IS DISTINCT FROM h.prev_currency)
  )
  SELECT c.id, c.tld, c.registrar, c.kind, c.prev_price, c.prev_currency, c.price, c.currency,
         c.price - c.prev_in_new,
         round(100 * (c.price - c.prev_in_new) / nullif(c.prev_in_new, 0), 2),
         CASE WHEN c.prev_price IS NULL THEN 'added'
              WHEN c.price IS NULL THEN 'withdrawn'
              WHEN c.prev_in_new IS NULL THEN 'changed'
              WHEN c.price > c.prev_in_new THEN 'up'
              WHEN c.price < c.prev_in_new THEN 'down'
              ELSE 'changed' END,
         c.observed_at
  FROM compared AS c;
END;
COMMENT ON FUNCTION pounce.price_change_events(bigint, bigint) IS
  'Price change events (LAG over each offer''s history) of the tld_prices rows with after_id < id <= through_id.';

-- -----------------------------------------------------------------------------
-- Price alerts
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.tld_price_alerts (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id         uuid NOT NULL DEFAULT pounce.current_user_id() REFERENCES pounce.users ON DELETE CASCADE,
  tld             text NOT NULL REFERENCES pounce.tlds ON DELETE CASCADE,
  registrar       text REFERENCES pounce.registrars ON UPDATE CASCADE ON DELETE CASCADE,
  kind            text CHECK (kind IN ('registration', 'renewal', 'transfer', 'restore')),
  direction       text NOT NULL DEFAULT 'any' CHECK (direction IN ('up', 'down', 'any')),
  min_change_pct  numeric(6,2) NOT NULL DEFAULT 0 CHECK (min_change_pct >= 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT tld_price_alerts_once UNIQUE NULLS NOT DISTINCT (user_id, tld, registrar, kind, direction)
);
-- Fan-out: the changes of a TLD meet its subscriptions.
CREATE INDEX tld_price_alerts_tld ON pounce.tld_price_alerts (tld);
COMMENT ON TABLE pounce.tld_price_alerts IS
  'Members'' price alerts: a TLD, optionally one registrar and kind, a direction and a minimum percent change.';

ALTER TABLE pounce.tld_price_alerts ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.tld_price_alerts FORCE ROW LEVEL SECURITY;
CREATE POLICY tld_price_alerts_own ON pounce.tld_price_alerts TO member
  USING (user_id = pounce.current_user_id())
  WITH CHECK (user_id = pounce.current_user_id());
CREATE POLICY tld_price_alerts_internal ON pounce.tld_price_alerts TO pounce_owner USING (true) WITH CHECK (true);

-- tld_price_alert_check(): before an alert is stored, normalise its TLD as parse_domain
-- does (".COM" -> com, IDN -> xn--) and hold its owner to the plan's alert limit.
-- SECURITY DEFINER: it reads the owner's plan and counts their alerts whoever inserts;
-- pounce.lock_plan serialises two concurrent inserts of one member.
CREATE FUNCTION pounce.tld_price_alert_check() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  alert_limit integer;
BEGIN
  NEW.tld := pounce.idna_to_ascii(lower(ltrim(btrim(NEW.tld), '.')));
  NEW.registrar := lower(btrim(NEW.registrar));
  alert_limit := (pounce.lock_plan(NEW.user_id)).tld_price_alert_limit;
  IF (SELECT count(*) FROM pounce.tld_price_alerts AS a WHERE a.user_id = NEW.user_id) >= alert_limit THEN
    RAISE EXCEPTION USING ERRCODE = 'P0001',
      MESSAGE = format('your plan allows %s price alerts', alert_limit),
      HINT = 'delete an alert or upgrade your plan';
  END IF;
  RETURN NEW;
END $$;
COMMENT ON FUNCTION pounce.tld_price_alert_check() IS
  'Trigger: normalises an alert''s TLD and enforces the plan''s tld_price_alert_limit.';
CREATE TRIGGER tld_price_alert_check BEFORE INSERT ON pounce.tld_price_alerts
  FOR EACH ROW EXECUTE FUNCTION pounce.tld_price_alert_check();

GRANT SELECT, DELETE ON pounce.tld_price_alerts TO member;
GRANT INSERT (tld, registrar, kind, direction, min_change_pct) ON pounce.tld_price_alerts TO member;
GRANT UPDATE (direction, min_change_pct) ON pounce.tld_price_alerts TO member;

CREATE VIEW api.tld_price_alerts WITH (security_invoker = true) AS
SELECT id, tld, registrar, kind, direction, min_change_pct, created_at
FROM pounce.tld_price_alerts;
COMMENT ON VIEW api.tld_price_alerts IS
  'Your TLD price alerts. POST {"tld": "com", "registrar": null, "kind": "renewal", "direction": "up", '
  '"min_change_pct": 5} (registrar and kind optional: any); PATCH direction or min_change_pct; DELETE. '
  'A change fans out one notification (kind tld.price_change) per member and change. '
  'Errors: 409 unknown TLD or registrar or a duplicate alert, 400 plan limit reached.';
GRANT SELECT, DELETE ON api.tld_price_alerts TO member;
GRANT INSERT (tld, registrar, kind, direction, min_change_pct) ON api.tld_price_alerts TO member;
GRANT UPDATE (direction, min_change_pct) ON api.tld_price_alerts TO member;

-- -----------------------------------------------------------------------------
-- The job: detect, log, notify, advance the watermark
-- -----------------------------------------------------------------------------
-- detect_price_changes(): appends the changes since the watermark to price_changes,
-- notifies every member with a matching alert once per change, and moves the
-- watermark, in one transaction: a failure anywhere leaves everything as it was.
-- FOR UPDATE on the watermark row waits for ingestions in flight (they hold it FOR
-- SHARE) and for another run of this job, which then starts from the new watermark.
-- At most batch_rows history rows are read per run (the watermark then stands at the
-- last of them and the next run goes on), so a backlog never makes one long transaction.
-- Returns how many changes and notifications it added.
-- jit is off: the planner prices the rate look-ups of a currency change as if every
-- row made them, and JIT compilation of that estimate took longer than a day's detection.
CREATE FUNCTION pounce.detect_price_changes(batch_rows bigint DEFAULT 200000,
                                            OUT changes bigint, OUT notifications bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
SET jit = off
AS $$
DECLARE
  from_id bigint;
  through_id bigint;
BEGIN
  -- Each statement below must see what committed before the lock was granted.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION USING ERRCODE = '25001',
      MESSAGE = 'detect_price_changes() needs READ COMMITTED isolation';
  END IF;
  SELECT w.last_price_id INTO from_id FROM pounce.price_change_watermark AS w FOR UPDATE;
  SELECT least(coalesce(max(p.id), from_id), from_id + batch_rows) INTO through_id FROM pounce.tld_prices AS p;

  WITH events AS (
    INSERT INTO pounce.price_changes (price_id, tld, registrar, kind, old_price, old_currency, new_price,
                                      new_currency, change, change_pct, direction, observed_at)
    SELECT e.price_id, e.tld, e.registrar, e.kind, e.old_price, e.old_currency, e.new_price,
           e.new_currency, e.change, e.change_pct, e.direction, e.observed_at
    FROM pounce.price_change_events(from_id, through_id) AS e
    ON CONFLICT (price_id) DO NOTHING
    RETURNING *
  ),
  -- Alerts are about prices going up or down; new and withdrawn offers are in the log.
  -- Only changes observed in the last week are news: a backfill of old history (or the
  -- first run over it) logs its changes without flooding members with the past.
  fanout AS (
    INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key)
    SELECT DISTINCT ON (a.user_id, e.id)
           a.user_id, 'tld.price_change',
           jsonb_build_object('tld', e.tld, 'registrar', e.registrar, 'kind', e.kind,
                              'old_price', e.old_price, 'new_price', e.new_price, 'currency', e.new_currency,
                              'old_currency', e.old_currency, 'change', e.change, 'change_pct', e.change_pct,
                              'direction', e.direction, 'observed_at', e.observed_at, 'price_change_id', e.id),
           'price_change:' || e.id
    FROM events AS e
    JOIN pounce.tld_price_alerts AS a
      ON a.tld = e.tld
     AND (a.registrar IS NULL OR a.registrar = e.registrar)
     AND (a.kind IS NULL OR a.kind = e.kind)
     AND a.direction IN ('any', e.direction)
     AND coalesce(abs(e.change_pct) >= a.min_change_pct, true)  -- from a price of 0: any percent
    JOIN pounce.users AS u ON u.id = a.user_id AND NOT u.disabled
    WHERE e.direction IN ('up', 'down') AND e.observed_at > now() - interval '7 days'
    ORDER BY a.user_id, e.id
    ON CONFLICT (user_id, kind, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM fanout) INTO changes, notifications;

  UPDATE pounce.price_change_watermark SET last_price_id = through_id, updated_at = now()
  WHERE last_price_id <> through_id;
END $$;
COMMENT ON FUNCTION pounce.detect_price_changes(bigint) IS
  'pg_cron: appends price changes since the watermark, notifies subscribers, advances the watermark (atomic).';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.detect_price_changes', '*/5 * * * *', 'SELECT pounce.detect_price_changes()',
   'append TLD price changes since the watermark and notify the members who subscribed to them');

CREATE VIEW api.price_changes WITH (security_invoker = true) AS
SELECT id, tld, registrar, kind, old_price, old_currency, new_price, new_currency, change, change_pct,
       direction, observed_at, detected_at
FROM pounce.price_changes;
COMMENT ON VIEW api.price_changes IS
  'Recent registrar price changes, newest first with order=observed_at.desc; filter by tld, registrar, kind, '
  'direction (up, down, added, withdrawn, changed), change_pct and observed_at.';
GRANT SELECT ON pounce.price_changes TO anon, member;
GRANT SELECT ON api.price_changes TO anon, member;
