-- =============================================================================
-- Watch: scheduling, manual refresh, and the API
-- =============================================================================

-- -----------------------------------------------------------------------------
-- Scheduling (pg_cron, every minute)
-- -----------------------------------------------------------------------------
-- enqueue_due_checks(): in one statement, every monitored domain whose next check is
-- due gets a 'check_domain' job and its next check moves one interval (the shortest
-- among its watchers' plans) ahead. A domain whose previous check has not reported yet
-- (collectors behind or down) is not queued again, unless that check was queued more
-- than 6 hours ago and so was lost. This per-domain rule replaces the queue's dedup key
-- for scheduled checks: keyless jobs skip the dedup index, which is most of the cost
-- of queueing 100,000 at once. No row lock is taken first: a concurrent run re-checks
-- the conditions on the rows it waited for and skips them. Returns how many jobs were
-- added.
CREATE FUNCTION pounce.enqueue_due_checks() RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH moved AS (
    UPDATE pounce.monitored_domains AS m
    SET last_enqueued_at = now(), next_check_at = now() + m.check_interval
    WHERE m.next_check_at <= now()
      AND (m.last_enqueued_at IS NULL OR m.last_result_at >= m.last_enqueued_at
           OR m.last_enqueued_at < now() - interval '6 hours')
    RETURNING m.domain),
  queued AS (
    INSERT INTO pounce.jobs (kind, payload)
    SELECT 'check_domain', jsonb_build_object('domain', moved.domain) FROM moved
    RETURNING 1)
  SELECT count(*) FROM queued;
END;
COMMENT ON FUNCTION pounce.enqueue_due_checks() IS
  'Enqueue a check_domain job for every monitored domain that is due and not still being checked; '
  'returns how many (pg_cron, every minute).';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.enqueue_due_checks', '* * * * *', 'SELECT pounce.enqueue_due_checks()',
   'enqueue a check of every watched domain whose plan interval has passed'),
  ('pounce.prune_domain_checks', '41 3 * * *', 'SELECT pounce.prune_domain_checks()',
   'delete domain checks older than 400 days (each domain keeps its latest)'),
  ('pounce.prune_health_refreshes', '47 * * * *', 'SELECT pounce.prune_health_refreshes()',
   'forget manual refreshes older than a day (the limit looks back one hour)');

-- -----------------------------------------------------------------------------
-- Manual refresh, limited per member per hour by plan
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.health_refreshes (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id       uuid NOT NULL REFERENCES pounce.users ON DELETE CASCADE,
  domain        text NOT NULL,
  job_id        bigint NOT NULL,
  requested_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX health_refreshes_user_recent ON pounce.health_refreshes (user_id, requested_at);
COMMENT ON TABLE pounce.health_refreshes IS 'Manual check requests, counted against tiers.health_refreshes_per_hour.';
ALTER TABLE pounce.health_refreshes ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.health_refreshes FORCE ROW LEVEL SECURITY;
CREATE POLICY health_refreshes_internal ON pounce.health_refreshes TO pounce_owner USING (true) WITH CHECK (true);

CREATE FUNCTION pounce.prune_health_refreshes() RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (DELETE FROM pounce.health_refreshes WHERE requested_at < now() - interval '1 day' RETURNING 1)
  SELECT count(*) FROM gone;
END;
COMMENT ON FUNCTION pounce.prune_health_refreshes() IS 'Retention of the manual refresh log (pg_cron, hourly).';

-- refresh_health(domain): enqueues an immediate check of a domain on the caller's
-- watchlist (or speeds up the one already pending). Counted against the plan's
-- health_refreshes_per_hour; the member's row is locked while counting, so parallel
-- requests cannot exceed it.
CREATE FUNCTION api.refresh_health(domain text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  me uuid := pounce.current_user_id();
  name text;
  plan record;
  used integer;
  job bigint;
BEGIN
  IF me IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'sign in first';
  END IF;
  name := (pounce.parse_domain(refresh_health.domain)).registrable;
  IF NOT EXISTS (SELECT FROM pounce.watched_domains AS w WHERE w.user_id = me AND w.domain = name) THEN
    RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = format('%s is not on your watchlist', name),
      HINT = 'Add it to your watchlist first.';
  END IF;
  SELECT t.name, t.health_refreshes_per_hour AS per_hour INTO plan FROM pounce.lock_plan(me) AS t;
  SELECT count(*) INTO used FROM pounce.health_refreshes AS r
  WHERE r.user_id = me AND r.requested_at > now() - interval '1 hour';
  IF used >= plan.per_hour THEN
    RAISE EXCEPTION USING ERRCODE = 'PT429',
      MESSAGE = format('refresh limit reached: the %s plan allows %s manual checks per hour', plan.name, plan.per_hour),
      HINT = 'Scheduled checks continue; try again later or upgrade your plan.';
  END IF;
  job := pounce.enqueue('check_domain', jsonb_build_object('domain', name), name, now(), -10);
  INSERT INTO pounce.health_refreshes (user_id, domain, job_id) VALUES (me, name, job);
  RETURN jsonb_build_object('domain', name, 'job_id', job, 'refreshes_left', plan.per_hour - used - 1);
END $$;
COMMENT ON FUNCTION api.refresh_health(text) IS
  'Check a domain on your watchlist now (the result appears in watchlist and domain_history within moments). '
  'Returns {domain, job_id, refreshes_left}. 429 past your plan''s manual checks per hour; 404 if not watched.';
GRANT EXECUTE ON FUNCTION api.refresh_health(text) TO member;

-- -----------------------------------------------------------------------------
-- API
-- -----------------------------------------------------------------------------
-- The watchlist as entries: INSERT {domain, note, tags} to watch (normalised; 400 for
-- an invalid name or past the plan's limit), PATCH note/tags, DELETE to stop watching.
CREATE VIEW api.watched_domains WITH (security_invoker = true) AS
SELECT id, domain, note, tags, added_at
FROM pounce.watched_domains;
COMMENT ON VIEW api.watched_domains IS
  'Your watchlist entries. POST {domain, note?, tags?} to watch a domain (stored as its registrable name; '
  '400 if invalid or past your plan''s limit), PATCH note and tags, DELETE to stop watching.';
GRANT SELECT, DELETE ON api.watched_domains TO member;
GRANT INSERT (domain, note, tags), UPDATE (note, tags) ON api.watched_domains TO member;

-- Everything about every watched domain in one request, from stored results only:
-- the entry, its schedule, and `latest`, the summary of its latest check that
-- record_checks stores (pounce.check_summary). Each entry finds its monitored domain by
-- primary key (LIMIT 1 keeps the lateral subquery a per-row index lookup: a hash join
-- would scan every monitored domain to serve one member's page).
CREATE VIEW api.watchlist WITH (security_invoker = true) AS
SELECT w.id, w.domain, s.domain_unicode, w.note, w.tags, w.added_at, s.next_check_at, s.latest
FROM pounce.watched_domains AS w
LEFT JOIN LATERAL (
  SELECT m.domain_unicode, m.next_check_at, m.latest
  FROM pounce.monitored_domains AS m
  WHERE m.domain = w.domain
  LIMIT 1) AS s ON true;
COMMENT ON VIEW api.watchlist IS
  'Your watched domains, each with `latest`, the summary of its latest stored check: {checked_at, status '
  '(registered, available, grace, redemption, pending_delete, unknown), status_source (rdap, dns), registrar, '
  'epp_statuses, expires_at, predicted_drop_on, health (ok, warning, critical), health_score (0-100), '
  'health_issues (codes such as site_down, tls_expires_soon, parked), http_status, tls_days_left}; null until '
  'the first check. Filter e.g. latest->>health=eq.critical. Never checks live: see refresh_health; every '
  'check in full: domain_history.';
GRANT SELECT ON api.watchlist TO member;

-- domain_history(domain, lim): the checks of a watched domain, newest first.
CREATE FUNCTION api.domain_history(domain text, lim integer DEFAULT 100)
RETURNS TABLE (checked_at timestamptz, status text, status_source text, registrar text, epp_statuses text[],
               expires_at timestamptz, predicted_drop_on date, nameservers text[], a text[], aaaa text[],
               mx text[], txt text[], caa text[], http_status integer, http_final_url text,
               http_redirects text[], http_ms integer, parked boolean, tls_issuer text, tls_subject text,
               tls_sans text[], tls_not_after timestamptz, tls_days_left integer, tls_chain_ok boolean,
               tls_hostname_ok boolean, health text, health_score smallint, health_issues text[], errors jsonb)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT c.checked_at, c.registration, c.registration_source, c.registrar, c.epp_statuses, c.expires_at,
         c.predicted_drop_on, c.nameservers, c.a, c.aaaa, c.mx, c.txt, c.caa, c.http_status, c.http_final_url,
         c.http_redirects, c.http_ms, c.parked, c.tls_issuer, c.tls_subject, c.tls_sans, c.tls_not_after,
         c.tls_days_left, c.tls_chain_ok, c.tls_hostname_ok, c.health_status,
         c.health_score, c.health_issues, c.errors
  FROM pounce.domain_checks AS c
  WHERE c.domain = (pounce.parse_domain(domain_history.domain)).registrable
    AND EXISTS (SELECT FROM pounce.watched_domains AS w
                WHERE w.user_id = pounce.current_user_id() AND w.domain = c.domain)
  ORDER BY c.checked_at DESC
  LIMIT least(greatest(domain_history.lim, 0), 1000);
END;
COMMENT ON FUNCTION api.domain_history(text, integer) IS
  'Checks of a domain on your watchlist, newest first (at most lim, up to 1000): status, DNS, HTTP, TLS, health.';
GRANT EXECUTE ON FUNCTION api.domain_history(text, integer) TO member;

-- domain_changes(domain): the change log of a watched domain, newest first.
CREATE FUNCTION api.domain_changes(domain text, lim integer DEFAULT 100)
RETURNS TABLE (changed_at timestamptz, field text, old_value text, new_value text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT ch.changed_at, ch.field, ch.old_value, ch.new_value
  FROM pounce.domain_changes AS ch
  WHERE ch.domain = (pounce.parse_domain(domain_changes.domain)).registrable
    AND EXISTS (SELECT FROM pounce.watched_domains AS w
                WHERE w.user_id = pounce.current_user_id() AND w.domain = ch.domain)
  ORDER BY ch.changed_at DESC, ch.id DESC
  LIMIT least(greatest(domain_changes.lim, 0), 1000);
END;
COMMENT ON FUNCTION api.domain_changes(text, integer) IS
  'What changed on a domain on your watchlist (registration, registrar, nameservers, mx, addresses, tls_issuer, '
  'expires_at, site), newest first.';
GRANT EXECUTE ON FUNCTION api.domain_changes(text, integer) TO member;

-- RDAP servers per TLD for the collectors (IANA's bootstrap data, from pounce.tlds).
CREATE FUNCTION collector.rdap_bootstrap() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT coalesce(jsonb_object_agg(t.tld, to_jsonb(t.rdap_servers)), '{}')
  FROM pounce.tlds AS t WHERE t.rdap_servers <> '{}';
END;
COMMENT ON FUNCTION collector.rdap_bootstrap() IS 'RDAP base URLs by TLD, for TLDs that publish one.';
GRANT EXECUTE ON FUNCTION collector.rdap_bootstrap() TO collector;
