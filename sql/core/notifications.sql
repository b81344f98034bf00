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
