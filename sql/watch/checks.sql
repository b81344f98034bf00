-- =============================================================================
-- Domain checks: history, health, drop prediction, changes, notifications
-- =============================================================================
-- A collector checks a domain (RDAP or DNS for registration; DNS, HTTP and TLS for
-- health) and hands the result to collector.record_checks(). Everything that follows
-- from the results is SQL: the health issues, score and status, the predicted drop
-- date, the change log (registrar, nameservers, MX, addresses, TLS issuer, status,
-- expiry) and the notifications to every watcher, each event once.

-- -----------------------------------------------------------------------------
-- Derivations from one check (IMMUTABLE: they back generated columns)
-- -----------------------------------------------------------------------------

-- predict_drop(registration, expires_at, last_changed_at, checked_at): the day a
-- domain is expected to be deleted and become registrable again, following the gTLD
-- life cycle: after expiry up to 45 days of auto-renew grace, then 30 days of
-- redemption, then 5 days of pending delete. NULL while it is neither expired nor in
-- the drop cycle (and for available domains). A stage's start is its last change when
-- the registry reported it, else the check (a later bound).
CREATE FUNCTION pounce.predict_drop(registration text, expires_at timestamptz, last_changed_at timestamptz,
                                    checked_at timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE
  WHEN registration = 'pending_delete'
    THEN (timezone('UTC', coalesce(last_changed_at, checked_at)))::date + 5
  WHEN registration = 'redemption'
    THEN (timezone('UTC', coalesce(last_changed_at, checked_at)))::date + 35
  WHEN registration IN ('registered', 'grace') AND expires_at < checked_at
    THEN (timezone('UTC', expires_at))::date + 80
END;
COMMENT ON FUNCTION pounce.predict_drop(text, timestamptz, timestamptz, timestamptz) IS
  'Expected drop date from status and expiry: grace 45 d, redemption 30 d, pending delete 5 d.';

-- health_issues(...): what is wrong with a registered domain, as codes; the
-- severity of each is in issue_severity(). Empty: healthy.
CREATE FUNCTION pounce.health_issues(registration text, addresses integer, mx integer, http_status integer,
                                     http_ms integer, parked boolean, tls_not_after timestamptz,
                                     tls_chain_ok boolean, tls_hostname_ok boolean, tls_error text,
                                     expires_at timestamptz, checked_at timestamptz) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE WHEN registration IN ('registered', 'grace', 'redemption', 'pending_delete') THEN array_remove(ARRAY[
  CASE WHEN registration IN ('redemption', 'pending_delete') THEN 'dropping' END,
  CASE WHEN expires_at < checked_at THEN 'expired'
       WHEN expires_at < checked_at + interval '30 days' THEN 'expires_soon' END,
  CASE WHEN addresses = 0 THEN 'no_address' END,
  CASE WHEN addresses > 0 AND http_status IS NULL THEN 'site_down'
       WHEN http_status >= 500 THEN 'http_5xx'
       WHEN http_status >= 400 THEN 'http_4xx' END,
  CASE WHEN http_ms > 3000 THEN 'slow' END,
  CASE WHEN parked THEN 'parked' END,
  CASE WHEN mx = 0 THEN 'no_mx' END,
  CASE WHEN tls_not_after < checked_at THEN 'tls_expired'
       WHEN tls_chain_ok = false THEN 'tls_untrusted'
       WHEN tls_hostname_ok = false THEN 'tls_wrong_host'
       WHEN tls_not_after < checked_at + interval '21 days' THEN 'tls_expires_soon'
       WHEN addresses > 0 AND tls_not_after IS NULL AND tls_error IS NOT NULL THEN 'no_tls' END
  ], NULL) END;
COMMENT ON FUNCTION pounce.health_issues(text, integer, integer, integer, integer, boolean, timestamptz, boolean,
                                         boolean, text, timestamptz, timestamptz) IS
  'Health issue codes of a registered domain''s check (NULL for unregistered domains).';

-- issue_severity(code): critical issues make a domain critical, warnings a warning.
CREATE FUNCTION pounce.issue_severity(issue text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE WHEN issue IN ('dropping', 'expired', 'site_down', 'http_5xx', 'tls_expired', 'tls_untrusted',
                           'tls_wrong_host') THEN 'critical' ELSE 'warning' END;
COMMENT ON FUNCTION pounce.issue_severity(text) IS 'critical or warning, for a health issue code.';

-- health_score(issues): 100, minus 40 per critical issue and 10 per warning, at least 0.
CREATE FUNCTION pounce.health_score(issues text[]) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE WHEN issues IS NOT NULL THEN greatest(0, 100 - (
  SELECT coalesce(sum(CASE pounce.issue_severity(i) WHEN 'critical' THEN 40 ELSE 10 END), 0)
  FROM unnest(issues) AS i))::smallint END;
COMMENT ON FUNCTION pounce.health_score(text[]) IS 'Health score 0-100 from the issue codes (NULL: not applicable).';

-- health_status(issues): ok, warning or critical (NULL for unregistered domains).
CREATE FUNCTION pounce.health_status(issues text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE WHEN issues IS NULL THEN NULL
            WHEN EXISTS (SELECT FROM unnest(issues) AS i WHERE pounce.issue_severity(i) = 'critical') THEN 'critical'
            WHEN cardinality(issues) > 0 THEN 'warning'
            ELSE 'ok' END;
COMMENT ON FUNCTION pounce.health_status(text[]) IS 'ok, warning or critical from the issue codes.';

-- -----------------------------------------------------------------------------
-- History
-- -----------------------------------------------------------------------------
-- Every check, newest last. Keyed (id, checked_at) so that it can become a table
-- partitioned by checked_at (the growth path) without changing its key; retention is
-- pounce.prune_domain_checks() (pg_cron). Lists are stored sorted, so equal sets
-- compare equal in change detection.
CREATE TABLE pounce.domain_checks (
  id                   bigint GENERATED ALWAYS AS IDENTITY,
  domain               text NOT NULL,
  checked_at           timestamptz NOT NULL,
  registration         text NOT NULL
                       CHECK (registration IN ('registered', 'available', 'grace', 'redemption', 'pending_delete',
                                               'unknown')),
  registration_source  text CHECK (registration_source IN ('rdap', 'dns')),
  registrar            text,
  epp_statuses         text[] NOT NULL DEFAULT '{}',
  registered_at        timestamptz,
  expires_at           timestamptz,
  last_changed_at      timestamptz,
  nameservers          text[] NOT NULL DEFAULT '{}',
  a                    text[] NOT NULL DEFAULT '{}',
  aaaa                 text[] NOT NULL DEFAULT '{}',
  mx                   text[] NOT NULL DEFAULT '{}',
  txt                  text[] NOT NULL DEFAULT '{}',
  caa                  text[] NOT NULL DEFAULT '{}',
  http_status          integer CHECK (http_status BETWEEN 100 AND 599),
  http_final_url       text,
  http_redirects       text[] NOT NULL DEFAULT '{}',
  http_ms              integer CHECK (http_ms >= 0),
  parked               boolean,
  tls_issuer           text,
  tls_subject          text,
  tls_sans             text[] NOT NULL DEFAULT '{}',
  tls_not_after        timestamptz,
  tls_hostname_ok      boolean,
  tls_chain_ok         boolean,
  errors               jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(errors) = 'object'),
  tls_days_left        integer GENERATED ALWAYS AS (floor(extract(epoch FROM tls_not_after - checked_at) / 86400)) STORED,
  predicted_drop_on    date GENERATED ALWAYS AS (
                         pounce.predict_drop(registration, expires_at, last_changed_at, checked_at)) STORED,
  health_issues        text[] GENERATED ALWAYS AS (pounce.health_issues(
                         registration, cardinality(a) + cardinality(aaaa), cardinality(mx), http_status, http_ms,
                         parked, tls_not_after, tls_chain_ok, tls_hostname_ok, errors ->> 'tls',
                         expires_at, checked_at)) STORED,
  -- score and status again from the same inputs (a generated column cannot read
  -- another): stored, so pages read them instead of computing them per row
  health_score         smallint GENERATED ALWAYS AS (pounce.health_score(pounce.health_issues(
                         registration, cardinality(a) + cardinality(aaaa), cardinality(mx), http_status, http_ms,
                         parked, tls_not_after, tls_chain_ok, tls_hostname_ok, errors ->> 'tls',
                         expires_at, checked_at))) STORED,
  health_status        text GENERATED ALWAYS AS (pounce.health_status(pounce.health_issues(
                         registration, cardinality(a) + cardinality(aaaa), cardinality(mx), http_status, http_ms,
                         parked, tls_not_after, tls_chain_ok, tls_hostname_ok, errors ->> 'tls',
                         expires_at, checked_at))) STORED,
  PRIMARY KEY (id, checked_at),
  UNIQUE (domain, checked_at)
);
COMMENT ON TABLE pounce.domain_checks IS
  'Every check of a monitored domain: registration (RDAP or DNS), DNS, HTTP and TLS; health and drop date derived.';
COMMENT ON COLUMN pounce.domain_checks.errors IS 'What could not be checked and why, by part: {"rdap": ..., "http": ...}.';
GRANT SELECT ON pounce.domain_checks TO member;

-- prune_domain_checks(keep): retention; deletes checks older than keep except each
-- domain's latest. Returns how many.
CREATE FUNCTION pounce.prune_domain_checks(keep interval DEFAULT interval '400 days') RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (
    DELETE FROM pounce.domain_checks AS c
    WHERE c.checked_at < now() - keep
      AND NOT EXISTS (SELECT FROM pounce.monitored_domains AS m WHERE m.last_check_id = c.id)
    RETURNING 1)
  SELECT count(*) FROM gone;
END;
COMMENT ON FUNCTION pounce.prune_domain_checks(interval) IS
  'Retention: deletes checks older than keep, except each domain''s latest (pg_cron, daily).';

-- check_summary(check): the part of a check a watchlist page shows, as JSON with UTC
-- timestamps. Stored on monitored_domains when the check becomes the latest, so a page
-- of 500 domains serialises 500 ready JSON values instead of 500 x 11 typed columns
-- (half the server time of api.watchlist).
CREATE FUNCTION pounce.check_summary(c pounce.domain_checks) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
RETURN jsonb_build_object(
  'checked_at', to_char(timezone('UTC', c.checked_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  'status', c.registration, 'status_source', c.registration_source, 'registrar', c.registrar,
  'epp_statuses', c.epp_statuses,
  'expires_at', to_char(timezone('UTC', c.expires_at), 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
  'predicted_drop_on', c.predicted_drop_on,
  'health', c.health_status, 'health_score', c.health_score, 'health_issues', c.health_issues,
  'http_status', c.http_status, 'tls_days_left', c.tls_days_left);
COMMENT ON FUNCTION pounce.check_summary(pounce.domain_checks) IS
  'The watchlist''s view of a check: status, registrar, EPP statuses, expiry, drop date, health (UTC times).';

-- The change log: one row per field that differs between consecutive checks.
CREATE TABLE pounce.domain_changes (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain      text NOT NULL,
  check_id    bigint NOT NULL,
  changed_at  timestamptz NOT NULL,
  field       text NOT NULL CHECK (field IN ('registration', 'registrar', 'nameservers', 'mx', 'addresses',
                                             'tls_issuer', 'expires_at', 'site')),
  old_value   text,
  new_value   text,
  UNIQUE (check_id, field)
);
CREATE INDEX domain_changes_domain_recent ON pounce.domain_changes (domain, changed_at DESC);
COMMENT ON TABLE pounce.domain_changes IS 'What changed between consecutive checks of a domain (derived by record_checks).';

-- -----------------------------------------------------------------------------
-- Ingestion
-- -----------------------------------------------------------------------------

-- text_set(value): a JSON array as a sorted text array without duplicates ('{}' for
-- anything that is not an array), so list order never looks like a change.
CREATE FUNCTION pounce.text_set(value jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE WHEN jsonb_typeof(value) = 'array'
            THEN ARRAY(SELECT DISTINCT e FROM jsonb_array_elements_text(value) AS e WHERE e IS NOT NULL ORDER BY e)
            ELSE '{}' END;
COMMENT ON FUNCTION pounce.text_set(jsonb) IS 'Sorted, distinct text array of a JSON array.';

-- record_checks(checks): stores a batch of check results (a JSON array of objects
-- whose keys are domain_checks columns, as collectors/domain_check.py builds them;
-- other keys are ignored)
-- and derives changes and notifications, set-based. A result for a domain that is
-- not monitored, or without a valid domain, checked_at or registration, is rejected
-- into pounce.ingest_rejects. Idempotent: (domain, checked_at) is stored once.
-- Returns {"inserted", "unchanged", "rejected", "changes", "notifications"}.
CREATE FUNCTION collector.record_checks(checks jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  total integer;
  rejected integer;
  new_ids bigint[];
  pair_ids bigint[];
  prev_ids bigint[];
  changes integer;
  notified integer;
BEGIN
  IF jsonb_typeof(checks) <> 'array' THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'record_checks expects a JSON array of check results';
  END IF;
  total := jsonb_array_length(checks);

  -- 1. Validate at the door; the bad ones go to ingest_rejects.
  WITH input AS (
    SELECT r.value AS raw, r.value ->> 'domain' AS domain,
           pounce.try_timestamptz(r.value ->> 'checked_at') AS checked_at,
           r.value ->> 'registration' AS registration
    FROM jsonb_array_elements(checks) AS r),
  bad AS (
    SELECT i.raw, CASE
             WHEN jsonb_typeof(i.raw) <> 'object' THEN 'not an object'
             WHEN i.domain IS NULL THEN 'no domain'
             WHEN i.checked_at IS NULL THEN 'no valid checked_at'
             WHEN i.checked_at > now() + interval '5 minutes' THEN 'checked_at is in the future'
             WHEN i.registration IS NULL OR i.registration NOT IN
                  ('registered', 'available', 'grace', 'redemption', 'pending_delete', 'unknown')
               THEN 'registration must be registered, available, grace, redemption, pending_delete or unknown'
             WHEN NOT EXISTS (SELECT FROM pounce.monitored_domains AS m WHERE m.domain = i.domain)
               THEN 'domain is not monitored'
           END AS reason
    FROM input AS i),
  rejects AS (
    INSERT INTO pounce.ingest_rejects (source, reason, raw)
    SELECT 'record_checks', reason, CASE WHEN jsonb_typeof(raw) = 'object' THEN raw ELSE jsonb_build_object('value', raw) END
    FROM bad WHERE reason IS NOT NULL
    RETURNING 1),
  good AS (
    SELECT raw FROM bad WHERE reason IS NULL),
  -- 2. Store the good ones (a result stored before is left alone).
  stored AS (
    INSERT INTO pounce.domain_checks (
      domain, checked_at, registration, registration_source, registrar, epp_statuses, registered_at, expires_at,
      last_changed_at, nameservers, a, aaaa, mx, txt, caa, http_status, http_final_url, http_redirects, http_ms,
      parked, tls_issuer, tls_subject, tls_sans, tls_not_after, tls_hostname_ok, tls_chain_ok, errors)
    SELECT g.raw ->> 'domain', (g.raw ->> 'checked_at')::timestamptz, g.raw ->> 'registration',
           nullif(g.raw ->> 'registration_source', ''), nullif(g.raw ->> 'registrar', ''),
           pounce.text_set(g.raw -> 'epp_statuses'),
           pounce.try_timestamptz(g.raw ->> 'registered_at'), pounce.try_timestamptz(g.raw ->> 'expires_at'),
           pounce.try_timestamptz(g.raw ->> 'last_changed_at'),
           pounce.text_set(g.raw -> 'nameservers'), pounce.text_set(g.raw -> 'a'), pounce.text_set(g.raw -> 'aaaa'),
           pounce.text_set(g.raw -> 'mx'), pounce.text_set(g.raw -> 'txt'), pounce.text_set(g.raw -> 'caa'),
           CASE WHEN (g.raw ->> 'http_status') ~ '^[1-5][0-9][0-9]$' THEN (g.raw ->> 'http_status')::integer END,
           g.raw ->> 'http_final_url',
           CASE WHEN jsonb_typeof(g.raw -> 'http_redirects') = 'array'
                THEN ARRAY(SELECT jsonb_array_elements_text(g.raw -> 'http_redirects')) ELSE '{}' END,
           CASE WHEN (g.raw ->> 'http_ms') ~ '^[0-9]{1,9}$' THEN (g.raw ->> 'http_ms')::integer END,
           CASE WHEN jsonb_typeof(g.raw -> 'parked') = 'boolean' THEN (g.raw -> 'parked')::boolean END,
           g.raw ->> 'tls_issuer', g.raw ->> 'tls_subject', pounce.text_set(g.raw -> 'tls_sans'),
           pounce.try_timestamptz(g.raw ->> 'tls_not_after'),
           CASE WHEN jsonb_typeof(g.raw -> 'tls_hostname_ok') = 'boolean' THEN (g.raw -> 'tls_hostname_ok')::boolean END,
           CASE WHEN jsonb_typeof(g.raw -> 'tls_chain_ok') = 'boolean' THEN (g.raw -> 'tls_chain_ok')::boolean END,
           CASE WHEN jsonb_typeof(g.raw -> 'errors') = 'object' THEN g.raw -> 'errors' ELSE '{}' END
    FROM good AS g
    ON CONFLICT (domain, checked_at) DO NOTHING
    RETURNING id)
  SELECT (SELECT count(*) FROM rejects), (SELECT array_agg(id) FROM stored)
  INTO rejected, new_ids;
  new_ids := coalesce(new_ids, '{}');

  -- 3. Pair every new check with the one before it (the domain's latest so far, or an
  --    earlier check of the same batch) and derive the change log.
  SELECT coalesce(array_agg(s.id), '{}'), coalesce(array_agg(s.prev_id), '{}')
  INTO pair_ids, prev_ids
  FROM (SELECT c.domain, c.id, c.checked_at, c.is_new,
               lag(c.id) OVER (PARTITION BY c.domain ORDER BY c.checked_at, c.id) AS prev_id
        FROM (SELECT n.domain, n.id, n.checked_at, true AS is_new
              FROM pounce.domain_checks AS n WHERE n.id = ANY (new_ids)
              UNION ALL
              SELECT l.domain, l.id, l.checked_at, false
              FROM pounce.monitored_domains AS m
              JOIN pounce.domain_checks AS l ON l.id = m.last_check_id
              WHERE m.domain IN (SELECT n.domain FROM pounce.domain_checks AS n WHERE n.id = ANY (new_ids))) AS c
       ) AS s
  JOIN pounce.monitored_domains AS m ON m.domain = s.domain
  -- a late result older than the latest known check is history, not news
  WHERE s.is_new AND (m.last_checked_at IS NULL OR s.checked_at > m.last_checked_at);

  WITH diffs AS (
    INSERT INTO pounce.domain_changes (domain, check_id, changed_at, field, old_value, new_value)
    SELECT cur.domain, cur.id, cur.checked_at, f.field, f.old_value, f.new_value
    FROM unnest(pair_ids, prev_ids) AS p(id, prev_id)
    JOIN pounce.domain_checks AS cur ON cur.id = p.id
    JOIN pounce.domain_checks AS prev ON prev.id = p.prev_id,
    LATERAL (VALUES
      ('registration', prev.registration, cur.registration),
      ('registrar', prev.registrar, cur.registrar),
      ('nameservers', array_to_string(prev.nameservers, ' '), array_to_string(cur.nameservers, ' ')),
      ('mx', array_to_string(prev.mx, ' '), array_to_string(cur.mx, ' ')),
      ('addresses', array_to_string(prev.a || prev.aaaa, ' '), array_to_string(cur.a || cur.aaaa, ' ')),
      ('tls_issuer', prev.tls_issuer, cur.tls_issuer),
      ('expires_at', timezone('UTC', prev.expires_at)::text, timezone('UTC', cur.expires_at)::text),
      ('site', CASE WHEN prev.http_status < 500 THEN 'up' WHEN cardinality(prev.a || prev.aaaa) > 0 THEN 'down' END,
               CASE WHEN cur.http_status < 500 THEN 'up' WHEN cardinality(cur.a || cur.aaaa) > 0 THEN 'down' END)
    ) AS f(field, old_value, new_value)
    WHERE f.old_value IS DISTINCT FROM f.new_value
      -- a part that could not be checked this time is not a change
      AND NOT (f.field = 'registrar' AND cur.registrar IS NULL AND cur.registration = prev.registration)
      AND NOT (f.field = 'tls_issuer' AND cur.tls_issuer IS NULL AND cur.errors ? 'tls')
      AND NOT (f.field IN ('nameservers', 'mx', 'addresses') AND cur.errors ? 'dns')
      AND NOT (f.field = 'expires_at' AND cur.expires_at IS NULL AND cur.registration <> 'available')
    ON CONFLICT (check_id, field) DO NOTHING
    RETURNING 1)
  SELECT count(*) INTO changes FROM diffs;

  -- 4. Notify every watcher, each event once (dedup_key names the event).
  WITH pair AS (
    SELECT cur.*, prev.registration AS prev_registration, prev.registrar AS prev_registrar,
           prev.nameservers AS prev_nameservers, prev.id IS NOT NULL AS has_prev,
           prev.http_status AS prev_http_status, cardinality(prev.a || prev.aaaa) AS prev_addresses,
           (prev.id IS NOT NULL AND prev.http_status IS NULL AND cardinality(prev.a || prev.aaaa) > 0) AS prev_down
    FROM unnest(pair_ids, prev_ids) AS p(id, prev_id)
    JOIN pounce.domain_checks AS cur ON cur.id = p.id
    LEFT JOIN pounce.domain_checks AS prev ON prev.id = p.prev_id),
  events AS (
    SELECT e.domain, e.kind, e.dedup_key, e.payload
    FROM pair AS c,
    -- the smallest threshold reached (days before expiry), if any
    LATERAL (SELECT min(d) AS days FROM unnest(ARRAY[30, 14, 7]) AS d
             WHERE c.expires_at >= c.checked_at AND c.expires_at < c.checked_at + make_interval(days => d)) AS x,
    LATERAL (SELECT min(d) AS days FROM unnest(ARRAY[21, 14, 7]) AS d
             WHERE c.tls_not_after >= c.checked_at AND c.tls_not_after < c.checked_at + make_interval(days => d)) AS t,
    LATERAL (VALUES
      (c.domain, 'watch.available', c.domain || ':available:' || c.id,
       CASE WHEN c.registration = 'available' AND c.prev_registration IS DISTINCT FROM 'available' THEN
         jsonb_build_object('domain', c.domain, 'previous', c.prev_registration, 'source', c.registration_source) END),
      (c.domain, 'watch.pending_delete', c.domain || ':pending_delete:' || c.id,
       CASE WHEN c.registration = 'pending_delete' AND c.prev_registration IS DISTINCT FROM 'pending_delete' THEN
         jsonb_build_object('domain', c.domain, 'predicted_drop_on', c.predicted_drop_on) END),
      (c.domain, 'watch.redemption', c.domain || ':redemption:' || c.id,
       CASE WHEN c.registration = 'redemption' AND c.prev_registration IS DISTINCT FROM 'redemption' THEN
         jsonb_build_object('domain', c.domain, 'predicted_drop_on', c.predicted_drop_on) END),
      -- once per expiry date and threshold
      (c.domain, 'watch.expiring', c.domain || ':expires:' || timezone('UTC', c.expires_at)::date || ':' || x.days,
       CASE WHEN x.days IS NOT NULL AND c.registration IN ('registered', 'grace') THEN
         jsonb_build_object('domain', c.domain, 'expires_at', c.expires_at, 'within_days', x.days) END),
      (c.domain, 'watch.tls_expiring', c.domain || ':tls:' || timezone('UTC', c.tls_not_after)::date || ':' || t.days,
       CASE WHEN t.days IS NOT NULL THEN
         jsonb_build_object('domain', c.domain, 'not_after', c.tls_not_after, 'within_days', t.days,
                            'issuer', c.tls_issuer) END),
      (c.domain, 'watch.site_down', c.domain || ':down:' || c.id,
       CASE WHEN c.http_status IS NULL AND cardinality(c.a || c.aaaa) > 0 AND c.prev_http_status < 500 THEN
         jsonb_build_object('domain', c.domain, 'error', c.errors ->> 'http') END),
      (c.domain, 'watch.site_up', c.domain || ':up:' || c.id,
       CASE WHEN c.http_status < 500 AND c.prev_down THEN
         jsonb_build_object('domain', c.domain, 'http_status', c.http_status) END),
      (c.domain, 'watch.registrar_changed', c.domain || ':registrar:' || c.id,
       CASE WHEN c.registrar IS NOT NULL AND c.prev_registrar IS NOT NULL AND c.registrar <> c.prev_registrar THEN
         jsonb_build_object('domain', c.domain, 'from', c.prev_registrar, 'to', c.registrar) END),
      (c.domain, 'watch.nameservers_changed', c.domain || ':nameservers:' || c.id,
       CASE WHEN c.nameservers <> '{}' AND c.prev_nameservers <> '{}' AND c.nameservers <> c.prev_nameservers
             AND NOT c.errors ? 'dns' THEN
         jsonb_build_object('domain', c.domain, 'from', c.prev_nameservers, 'to', c.nameservers) END)
    ) AS e(domain, kind, dedup_key, payload)
    WHERE e.payload IS NOT NULL),
  sent AS (
    INSERT INTO pounce.notifications (user_id, kind, payload, dedup_key)
    SELECT w.user_id, e.kind, e.payload, e.dedup_key
    FROM events AS e JOIN pounce.watched_domains AS w ON w.domain = e.domain
    ON CONFLICT (user_id, kind, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
    RETURNING 1)
  SELECT count(*) INTO notified FROM sent;

  -- 5. The newest check of each domain becomes its latest; every domain with a new
  --    result is no longer waiting for one (the scheduler may queue it again).
  UPDATE pounce.monitored_domains AS m
  SET last_check_id = coalesce(n.id, m.last_check_id), last_checked_at = coalesce(n.checked_at, m.last_checked_at),
      latest = coalesce((SELECT pounce.check_summary(c) FROM pounce.domain_checks AS c WHERE c.id = n.id), m.latest),
      last_result_at = now()
  FROM (SELECT DISTINCT c.domain FROM pounce.domain_checks AS c WHERE c.id = ANY (new_ids)) AS r
  LEFT JOIN (SELECT DISTINCT ON (c.domain) c.domain, c.id, c.checked_at
             FROM pounce.domain_checks AS c WHERE c.id = ANY (pair_ids)
             ORDER BY c.domain, c.checked_at DESC, c.id DESC) AS n ON n.domain = r.domain
  WHERE m.domain = r.domain;

  RETURN jsonb_build_object('inserted', cardinality(new_ids), 'unchanged', total - rejected - cardinality(new_ids),
                            'rejected', rejected, 'changes', changes, 'notifications', notified);
END $$;
COMMENT ON FUNCTION collector.record_checks(jsonb) IS
  'Store a batch of domain check results; derive changes and notifications. '
  'Returns {inserted, unchanged, rejected, changes, notifications}.';
GRANT EXECUTE ON FUNCTION collector.record_checks(jsonb) TO collector;
