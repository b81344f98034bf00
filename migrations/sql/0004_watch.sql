SET ROLE pounce_owner;

-- ---- sql/jobs/queue.sql ----
-- =============================================================================
-- Job queue (shared by every area)
-- =============================================================================
-- Anything that needs the network is a row here: pg_cron (or an api function) enqueues,
-- collectors claim with FOR UPDATE SKIP LOCKED, so any number of them run side by side
-- and each job goes to exactly one. Anchors: graphile-worker, procrastinate, river.
--
--   pounce.enqueue(kind, payload, dedup_key, run_at, priority) -> job id   (any area)
--   collector.claim(worker, n, kinds) -> the claimed jobs                  (collectors)
--   collector.complete(worker, ids) / collector.fail(worker, ids, errors, retry_in)
--   collector.release(worker, ids)         graceful shutdown: back to the queue
--   pounce.rescue_stale_jobs(timeout)      pg_cron: jobs of collectors that died
--   api.job_queue                          admin: depth and failures by kind
--
-- A row is a job that is pending (locked_at IS NULL) or running (locked_at set).
-- Completing deletes it (the queue stays small and hot); a job that fails
-- max_attempts times moves to pounce.dead_jobs, where an operator reads why.

-- -----------------------------------------------------------------------------
-- Tables
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.jobs (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind          text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]*$'),
  payload       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
  dedup_key     text CHECK (dedup_key <> ''),
  priority      integer NOT NULL DEFAULT 0,
  run_at        timestamptz NOT NULL DEFAULT now(),
  attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts  integer NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
  locked_by     text,
  locked_at     timestamptz,
  last_error    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT jobs_lock_pair CHECK ((locked_by IS NULL) = (locked_at IS NULL))
);
COMMENT ON TABLE pounce.jobs IS
  'Pending (locked_at NULL) and running jobs. Lower priority runs first, then older run_at.';
COMMENT ON COLUMN pounce.jobs.dedup_key IS
  'At most one pending job per (kind, dedup_key): enqueueing a taken key returns the pending job.';
COMMENT ON COLUMN pounce.jobs.attempts IS 'Claims so far (counted at claim, so a job that kills its collector dies too).';

-- What claim reads: the ready jobs in claim order.
CREATE INDEX jobs_ready ON pounce.jobs (priority, run_at) WHERE locked_at IS NULL;
-- Rescue and the admin view read the running jobs by lock age.
CREATE INDEX jobs_running ON pounce.jobs (locked_at) WHERE locked_at IS NOT NULL;
-- De-duplication of pending jobs; a running job no longer holds its key, so a change
-- that arrives while it runs is picked up by a new job.
CREATE UNIQUE INDEX jobs_dedup ON pounce.jobs (kind, dedup_key)
  WHERE dedup_key IS NOT NULL AND locked_at IS NULL;

CREATE TABLE pounce.dead_jobs (
  id          bigint PRIMARY KEY,
  kind        text NOT NULL,
  payload     jsonb NOT NULL,
  dedup_key   text,
  priority    integer NOT NULL,
  attempts    integer NOT NULL,
  last_error  text,
  locked_by   text,
  created_at  timestamptz NOT NULL,
  died_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_jobs_kind_recent ON pounce.dead_jobs (kind, died_at DESC);
COMMENT ON TABLE pounce.dead_jobs IS
  'Jobs that failed max_attempts times (or permanently): kept for an operator; pounce.retry_dead_jobs() requeues.';

-- -----------------------------------------------------------------------------
-- Wake-up: one NOTIFY per kind per enqueueing statement
-- -----------------------------------------------------------------------------
-- notify_jobs(): after an INSERT, NOTIFY pounce_jobs with each new kind, so idle
-- collectors (LISTEN pounce_jobs) claim at once instead of at their next poll.
CREATE FUNCTION pounce.notify_jobs() RETURNS trigger
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  PERFORM pg_notify('pounce_jobs', k.kind) FROM (SELECT DISTINCT kind FROM new_jobs) AS k;
  RETURN NULL;
END $$;
COMMENT ON FUNCTION pounce.notify_jobs() IS 'Trigger: NOTIFY pounce_jobs, payload the kind, once per kind per statement.';

CREATE TRIGGER jobs_notify AFTER INSERT ON pounce.jobs
  REFERENCING NEW TABLE AS new_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION pounce.notify_jobs();

-- -----------------------------------------------------------------------------
-- Enqueue (any area)
-- -----------------------------------------------------------------------------
-- enqueue(kind, payload, dedup_key, run_at, priority): adds a job; returns its id.
-- When a pending job holds the dedup key, that job is returned instead, moved earlier
-- and more urgent if this call asks for that (so a manual refresh speeds up a
-- scheduled check rather than adding a second one).
CREATE FUNCTION pounce.enqueue(kind text, payload jsonb, dedup_key text DEFAULT NULL,
                               run_at timestamptz DEFAULT now(), priority integer DEFAULT 0)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  INSERT INTO pounce.jobs AS j (kind, payload, dedup_key, run_at, priority)
  VALUES (enqueue.kind, coalesce(enqueue.payload, '{}'), enqueue.dedup_key,
          coalesce(enqueue.run_at, now()), coalesce(enqueue.priority, 0))
  ON CONFLICT (kind, dedup_key) WHERE dedup_key IS NOT NULL AND locked_at IS NULL
  DO UPDATE SET run_at = least(j.run_at, excluded.run_at), priority = least(j.priority, excluded.priority)
  RETURNING j.id;
END;
COMMENT ON FUNCTION pounce.enqueue(text, jsonb, text, timestamptz, integer) IS
  'Add a job (lower priority runs first); returns its id, or the id of the pending job holding dedup_key.';

-- -----------------------------------------------------------------------------
-- Collector side (SECURITY DEFINER: the collector role holds no table privileges)
-- -----------------------------------------------------------------------------

-- claim(worker, n, kinds): locks up to n ready jobs (of the given kinds, all when NULL)
-- for this worker and returns them; attempts counts this claim.
CREATE FUNCTION collector.claim(worker text, n integer DEFAULT 10, kinds text[] DEFAULT NULL)
RETURNS TABLE (id bigint, kind text, payload jsonb, attempts integer, max_attempts integer)
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH ready AS (
    SELECT j.id FROM pounce.jobs AS j
    WHERE j.locked_at IS NULL AND j.run_at <= now()
      AND (claim.kinds IS NULL OR j.kind = ANY (claim.kinds))
    ORDER BY j.priority, j.run_at
    LIMIT greatest(claim.n, 0)
    FOR UPDATE SKIP LOCKED
  )
  UPDATE pounce.jobs AS j
  SET locked_at = now(), locked_by = claim.worker, attempts = j.attempts + 1
  FROM ready WHERE j.id = ready.id
  RETURNING j.id, j.kind, j.payload, j.attempts, j.max_attempts;
END;
COMMENT ON FUNCTION collector.claim(text, integer, text[]) IS
  'Lock up to n ready jobs for worker (FOR UPDATE SKIP LOCKED) and return them.';

-- complete(worker, ids): deletes the worker's finished jobs; returns how many. A job
-- rescued from this worker (and maybe claimed by another) is not its to complete.
CREATE FUNCTION collector.complete(worker text, ids bigint[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH done AS (
    DELETE FROM pounce.jobs AS j
    WHERE j.id = ANY (complete.ids) AND j.locked_by = complete.worker
    RETURNING 1)
  SELECT count(*)::integer FROM done;
END;
COMMENT ON FUNCTION collector.complete(text, bigint[]) IS 'Delete the worker''s finished jobs; returns how many.';

-- requeue(ids, errors, delays, count_attempt, permanent): the one place where running
-- jobs leave their lock. Each job either dies (attempts used up, or permanent) into
-- dead_jobs, merges into a pending twin that holds its dedup key (the twin does the
-- work), or returns to the queue at now() + its delay. Returns (requeued, dead, merged).
-- Internal: fail, release and rescue call it with the jobs they have selected.
CREATE FUNCTION pounce.requeue(ids bigint[], errors text[], delays interval[], count_attempt boolean,
                               permanent boolean DEFAULT false,
                               OUT requeued integer, OUT dead integer, OUT merged integer)
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  WITH input AS (
    SELECT i.id, i.error, coalesce(i.delay, interval '0') AS delay
    FROM unnest(ids, errors, delays) AS i(id, error, delay)
  ),
  locked AS (
    SELECT j.id, j.kind, j.dedup_key, input.error, input.delay,
           count_attempt AND (permanent OR j.attempts >= j.max_attempts) AS dies
    FROM pounce.jobs AS j JOIN input USING (id)
    WHERE j.locked_at IS NOT NULL
    FOR UPDATE OF j
  ),
  -- of several running jobs with one dedup key, only the first may take the key back
  target AS (
    SELECT l.id, l.error, l.delay,
           CASE
             WHEN l.dies THEN 'dead'
             WHEN l.dedup_key IS NOT NULL AND (
                    row_number() OVER (PARTITION BY l.kind, l.dedup_key, l.dies ORDER BY l.id) > 1
                    OR EXISTS (SELECT FROM pounce.jobs AS twin
                               WHERE twin.kind = l.kind AND twin.dedup_key = l.dedup_key
                                 AND twin.locked_at IS NULL)) THEN 'merge'
             ELSE 'requeue'
           END AS fate
    FROM locked AS l
  ),
  died AS (
    DELETE FROM pounce.jobs AS j USING target AS t
    WHERE j.id = t.id AND t.fate = 'dead'
    RETURNING j.*, t.error
  ),
  buried AS (
    INSERT INTO pounce.dead_jobs (id, kind, payload, dedup_key, priority, attempts, last_error, locked_by, created_at)
    SELECT id, kind, payload, dedup_key, priority, attempts, coalesce(error, last_error), locked_by, created_at
    FROM died
    ON CONFLICT (id) DO NOTHING
    RETURNING 1
  ),
  gone AS (
    DELETE FROM pounce.jobs AS j USING target AS t
    WHERE j.id = t.id AND t.fate = 'merge'
    RETURNING 1
  ),
  back AS (
    UPDATE pounce.jobs AS j
    SET locked_at = NULL, locked_by = NULL,
        attempts = CASE WHEN count_attempt THEN j.attempts ELSE greatest(j.attempts - 1, 0) END,
        last_error = coalesce(t.error, j.last_error),
        run_at = now() + t.delay
    FROM target AS t
    WHERE j.id = t.id AND t.fate = 'requeue'
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM back), (SELECT count(*) FROM buried), (SELECT count(*) FROM gone)
  INTO requeued, dead, merged;
END $$;
COMMENT ON FUNCTION pounce.requeue(bigint[], text[], interval[], boolean, boolean) IS
  'Unlock running jobs: dead-letter, merge into a pending twin, or requeue after a delay. Internal.';

-- backoff(attempts): the wait before retry number `attempts`: 2^attempts seconds
-- (2 s, 4 s, 8 s, ...), at most an hour, with up to 20% jitter so a burst of failures
-- does not return as a burst.
CREATE FUNCTION pounce.backoff(attempts integer) RETURNS interval
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
RETURN make_interval(secs => least(3600, power(2, least(greatest(attempts, 1), 12))) * (1 + random() * 0.2));
COMMENT ON FUNCTION pounce.backoff(integer) IS 'Retry delay after a failure: 2^attempts s (max 1 h) plus up to 20% jitter.';

-- fail(worker, ids, errors, retry_in, permanent): the worker's jobs failed; each is
-- retried after exponential backoff (or after retry_in, e.g. a server's Retry-After),
-- or dead-lettered once max_attempts are used (at once when permanent). Returns
-- {"requeued", "dead", "merged"}.
CREATE FUNCTION collector.fail(worker text, ids bigint[], errors text[], retry_in interval DEFAULT NULL,
                               permanent boolean DEFAULT false)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT jsonb_build_object('requeued', r.requeued, 'dead', r.dead, 'merged', r.merged)
  FROM (SELECT array_agg(j.id ORDER BY j.id) AS ids,
               array_agg(left(e.error, 2000) ORDER BY j.id) AS errors,
               array_agg(coalesce(fail.retry_in, pounce.backoff(j.attempts)) ORDER BY j.id) AS delays
        FROM unnest(fail.ids, fail.errors) AS e(id, error)
        JOIN pounce.jobs AS j ON j.id = e.id AND j.locked_by = fail.worker) AS f,
       LATERAL pounce.requeue(coalesce(f.ids, '{}'), coalesce(f.errors, '{}'), coalesce(f.delays, '{}'),
                              true, fail.permanent) AS r;
END;
COMMENT ON FUNCTION collector.fail(text, bigint[], text[], interval, boolean) IS
  'Report failed jobs (errors[i] for ids[i]): retried with exponential backoff or retry_in, dead after max_attempts.';

-- release(worker, ids): graceful shutdown; the jobs go back to the queue as if never
-- claimed (the attempt is not counted). Returns how many.
CREATE FUNCTION collector.release(worker text, ids bigint[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT r.requeued + r.merged
  FROM (SELECT array_agg(j.id) AS ids FROM pounce.jobs AS j
        WHERE j.id = ANY (release.ids) AND j.locked_by = release.worker) AS f,
       LATERAL pounce.requeue(coalesce(f.ids, '{}'), '{}', '{}', false) AS r;
END;
COMMENT ON FUNCTION collector.release(text, bigint[]) IS
  'Return the worker''s claimed jobs to the queue unfinished (shutdown); the attempt is not counted.';

-- heartbeat(worker, ids): the worker still runs these jobs (refreshes locked_at so
-- rescue leaves them alone). Returns how many are still the worker's.
CREATE FUNCTION collector.heartbeat(worker text, ids bigint[]) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH alive AS (
    UPDATE pounce.jobs AS j SET locked_at = now()
    WHERE j.id = ANY (heartbeat.ids) AND j.locked_by = heartbeat.worker
    RETURNING 1)
  SELECT count(*)::integer FROM alive;
END;
COMMENT ON FUNCTION collector.heartbeat(text, bigint[]) IS 'Keep the worker''s long-running jobs from being rescued.';

-- -----------------------------------------------------------------------------
-- Maintenance (pg_cron)
-- -----------------------------------------------------------------------------

-- rescue_stale_jobs(timeout): jobs locked longer than timeout belong to a collector
-- that died (SIGKILL, lost host): back to the queue (their attempt counts), or dead if
-- their attempts are used up. Returns {"requeued", "dead", "merged"}.
CREATE FUNCTION pounce.rescue_stale_jobs(timeout interval DEFAULT interval '5 minutes') RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT jsonb_build_object('requeued', r.requeued, 'dead', r.dead, 'merged', r.merged)
  FROM (SELECT coalesce(array_agg(j.id), '{}') AS ids,
               coalesce(array_agg('lock expired: collector ' || j.locked_by || ' stopped answering'), '{}') AS errors
        FROM pounce.jobs AS j
        WHERE j.locked_at < now() - rescue_stale_jobs.timeout) AS s,
       LATERAL pounce.requeue(s.ids, s.errors, '{}', true) AS r;
END;
COMMENT ON FUNCTION pounce.rescue_stale_jobs(interval) IS
  'Requeue (or dead-letter) jobs locked longer than timeout by a collector that died (pg_cron, every minute).';

-- retry_dead_jobs(kind): operator action; dead jobs of a kind (all when NULL) go back
-- to the queue with fresh attempts. Returns how many.
CREATE FUNCTION pounce.retry_dead_jobs(only_kind text DEFAULT NULL) RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH revived AS (
    DELETE FROM pounce.dead_jobs AS d
    WHERE retry_dead_jobs.only_kind IS NULL OR d.kind = retry_dead_jobs.only_kind
    RETURNING d.*),
  queued AS (
    INSERT INTO pounce.jobs (kind, payload, dedup_key, priority, last_error)
    SELECT kind, payload, dedup_key, priority, last_error FROM revived
    ON CONFLICT (kind, dedup_key) WHERE dedup_key IS NOT NULL AND locked_at IS NULL DO NOTHING
    RETURNING 1)
  SELECT count(*) FROM queued;
END;
COMMENT ON FUNCTION pounce.retry_dead_jobs(text) IS 'Requeue dead jobs (of one kind, or all) with fresh attempts.';

-- prune_dead_jobs(keep): retention of the dead letters; returns how many were deleted.
CREATE FUNCTION pounce.prune_dead_jobs(keep interval DEFAULT interval '30 days') RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (DELETE FROM pounce.dead_jobs WHERE died_at < now() - keep RETURNING 1)
  SELECT count(*) FROM gone;
END;
COMMENT ON FUNCTION pounce.prune_dead_jobs(interval) IS 'Retention: deletes dead jobs older than keep (pg_cron, daily).';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.rescue_stale_jobs', '* * * * *', 'SELECT pounce.rescue_stale_jobs()',
   'requeue jobs whose collector died (locked for more than 5 minutes)'),
  ('pounce.prune_dead_jobs', '23 3 * * *', 'SELECT pounce.prune_dead_jobs()',
   'delete dead jobs older than 30 days');

-- -----------------------------------------------------------------------------
-- Admin view
-- -----------------------------------------------------------------------------
CREATE VIEW api.job_queue WITH (security_invoker = true) AS
WITH live AS (
  SELECT kind,
         count(*) FILTER (WHERE locked_at IS NULL AND run_at <= now()) AS ready,
         count(*) FILTER (WHERE locked_at IS NULL AND run_at > now()) AS scheduled,
         count(*) FILTER (WHERE locked_at IS NOT NULL) AS running,
         count(*) FILTER (WHERE locked_at IS NULL AND attempts > 0) AS retrying,
         min(run_at) FILTER (WHERE locked_at IS NULL AND run_at <= now()) AS oldest_ready_at,
         min(locked_at) AS oldest_lock_at
  FROM pounce.jobs GROUP BY kind),
dead AS (
  SELECT kind, count(*) AS dead, count(*) FILTER (WHERE died_at > now() - interval '24 hours') AS dead_last_24h,
         (array_agg(last_error ORDER BY died_at DESC))[1] AS last_dead_error, max(died_at) AS last_died_at
  FROM pounce.dead_jobs GROUP BY kind)
SELECT kind,
       coalesce(l.ready, 0) AS ready, coalesce(l.scheduled, 0) AS scheduled,
       coalesce(l.running, 0) AS running, coalesce(l.retrying, 0) AS retrying,
       now() - l.oldest_ready_at AS oldest_ready_age, now() - l.oldest_lock_at AS oldest_lock_age,
       coalesce(d.dead, 0) AS dead, coalesce(d.dead_last_24h, 0) AS dead_last_24h,
       d.last_dead_error, d.last_died_at
FROM live AS l FULL JOIN dead AS d USING (kind);
COMMENT ON VIEW api.job_queue IS
  'Admin: the job queue by kind: ready, scheduled, running, retrying, age of the oldest ready job and lock, '
  'dead jobs (all, last 24 h) with the last error.';
GRANT SELECT ON api.job_queue TO admin;
GRANT SELECT ON pounce.jobs, pounce.dead_jobs TO admin;

GRANT EXECUTE ON FUNCTION collector.claim(text, integer, text[]), collector.complete(text, bigint[]),
  collector.fail(text, bigint[], text[], interval, boolean), collector.release(text, bigint[]),
  collector.heartbeat(text, bigint[]) TO collector;

-- ---- sql/watch/watchlist.sql ----
-- =============================================================================
-- Watchlist: what members watch, and what is monitored on their behalf
-- =============================================================================
-- A member watches a domain (pounce.watched_domains, one row per member and domain,
-- under RLS). What is known about the domain is shared: pounce.monitored_domains holds
-- one row per domain anyone watches, with its schedule (the shortest check interval
-- among its watchers' plans) and its latest check, so a domain that 500 members watch
-- is checked once per interval, not 500 times. Triggers keep monitored_domains in
-- step with the watchlists and with plan changes.

-- -----------------------------------------------------------------------------
-- Tables
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.monitored_domains (
  domain            text PRIMARY KEY,
  domain_unicode    text NOT NULL,  -- display form (set once: a generated column would be recomputed by every update)
  suffix            text NOT NULL,   -- public suffix: com, co.uk
  watchers          integer NOT NULL DEFAULT 0 CHECK (watchers >= 0),
  check_interval    interval,        -- shortest plan interval of its watchers; NULL when nobody watches
  next_check_at     timestamptz,     -- when the scheduler enqueues the next check; NULL: not scheduled
  last_enqueued_at  timestamptz,
  last_result_at    timestamptz,     -- when a check result last arrived (database clock)
  last_check_id     bigint,          -- newest pounce.domain_checks row
  latest            jsonb,           -- what a watchlist page shows of it (pounce.check_summary)
  last_checked_at   timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  CHECK ((watchers = 0) = (check_interval IS NULL) AND (watchers = 0) = (next_check_at IS NULL))
) WITH (fillfactor = 50);
-- No index on next_check_at, on purpose: the scheduler and every result rewrite these
-- rows, and with no indexed column changing (and room on the page: fillfactor 50, so
-- even a run that moves every row finds it) those are HOT updates that touch no index,
-- 4x cheaper than with an index on next_check_at. The scheduler's once-a-minute scan
-- is then sequential: tens of milliseconds per 100,000 domains.
COMMENT ON TABLE pounce.monitored_domains IS
  'One row per domain that is or was watched: its schedule and latest check, shared by all its watchers.';

CREATE TABLE pounce.watched_domains (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id   uuid NOT NULL DEFAULT pounce.current_user_id() REFERENCES pounce.users ON DELETE CASCADE,
  domain    text NOT NULL,
  note      text CHECK (length(note) <= 2000),
  tags      text[] NOT NULL DEFAULT '{}'
            CHECK (cardinality(tags) <= 20 AND array_position(tags, NULL) IS NULL),
  added_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, domain)
);
CREATE INDEX watched_domains_domain ON pounce.watched_domains (domain);
COMMENT ON TABLE pounce.watched_domains IS
  'A member''s watchlist; domain is the registrable name, normalised on the way in. Limit: tiers.watchlist_limit.';

ALTER TABLE pounce.watched_domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.watched_domains FORCE ROW LEVEL SECURITY;
CREATE POLICY watched_domains_own ON pounce.watched_domains TO member
  USING (user_id = pounce.current_user_id())
  WITH CHECK (user_id = pounce.current_user_id());
CREATE POLICY watched_domains_internal ON pounce.watched_domains TO pounce_owner USING (true) WITH CHECK (true);

GRANT SELECT, DELETE ON pounce.watched_domains TO member;
GRANT INSERT (domain, note, tags), UPDATE (note, tags) ON pounce.watched_domains TO member;
-- api.watchlist joins the shared state (no user columns; the member's own watchlist,
-- under RLS, decides which rows a member reaches).
GRANT SELECT ON pounce.monitored_domains TO member;

-- -----------------------------------------------------------------------------
-- Normalisation at the door
-- -----------------------------------------------------------------------------
-- watched_domain_normalize(): a watched name is stored as its registrable domain
-- (" WWW.Example.COM. " -> example.com); an invalid name is a 400 with the reason.
-- SECURITY DEFINER: parse_domain reads the reference tables, which members may not.
CREATE FUNCTION pounce.watched_domain_normalize() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  NEW.domain := (pounce.parse_domain(NEW.domain)).registrable;
  RETURN NEW;
END $$;
COMMENT ON FUNCTION pounce.watched_domain_normalize() IS 'Trigger: store the registrable form of a watched name.';

CREATE TRIGGER watched_domains_normalize BEFORE INSERT OR UPDATE OF domain ON pounce.watched_domains
  FOR EACH ROW EXECUTE FUNCTION pounce.watched_domain_normalize();

-- -----------------------------------------------------------------------------
-- Monitoring follows the watchlists
-- -----------------------------------------------------------------------------
-- refresh_monitoring(domains): recomputes watchers, interval and next check of these
-- domains from the watchlists and plans, in one statement. A domain nobody watches
-- any more keeps its row (and history) but is no longer scheduled. Returns how many
-- rows it wrote.
CREATE FUNCTION pounce.refresh_monitoring(domains text[]) RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH wanted AS (
    SELECT d.domain, count(w.id)::integer AS watchers, min(t.check_interval) AS check_interval
    FROM (SELECT DISTINCT unnest(refresh_monitoring.domains) AS domain) AS d
    LEFT JOIN pounce.watched_domains AS w ON w.domain = d.domain
    LEFT JOIN pounce.users AS u ON u.id = w.user_id
    LEFT JOIN pounce.tiers AS t ON t.tier = u.tier
    GROUP BY d.domain),
  written AS (
    INSERT INTO pounce.monitored_domains AS m (domain, domain_unicode, suffix, watchers, check_interval, next_check_at)
    SELECT domain, pounce.idna_to_unicode(domain), substr(domain, strpos(domain, '.') + 1), watchers, check_interval,
           CASE WHEN watchers > 0 THEN now() END
    FROM wanted
    WHERE watchers > 0 OR EXISTS (SELECT FROM pounce.monitored_domains AS e WHERE e.domain = wanted.domain)
    ON CONFLICT (domain) DO UPDATE
    SET watchers = excluded.watchers,
        check_interval = excluded.check_interval,
        -- a new interval counts from the last enqueue; never checked: now
        next_check_at = CASE WHEN excluded.watchers > 0
                             THEN coalesce(m.last_enqueued_at + excluded.check_interval, now()) END
    WHERE (m.watchers, m.check_interval) IS DISTINCT FROM (excluded.watchers, excluded.check_interval)
    RETURNING 1)
  SELECT count(*)::integer FROM written;
END;
COMMENT ON FUNCTION pounce.refresh_monitoring(text[]) IS
  'Recompute watchers, check interval and next check of these domains from the watchlists and plans.';

-- watched_domains_changed(): after INSERT / DELETE / UPDATE of the watchlists. On
-- insert it enforces every affected member's plan limit, race-safe: it locks the
-- members' rows (in id order, so two imports cannot deadlock) before counting, so of
-- two concurrent inserts the second counts the first one's rows once it commits.
-- FOR NO KEY UPDATE, not FOR UPDATE: each insert already holds a KEY SHARE lock on the
-- member's row (the foreign key), which FOR UPDATE would turn into a deadlock.
-- Then it refreshes the monitoring of the domains involved.
CREATE FUNCTION pounce.watched_domains_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  over record;
  touched text[];
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM 1 FROM pounce.users AS u
    WHERE u.id IN (SELECT user_id FROM new_rows)
    ORDER BY u.id
    FOR NO KEY UPDATE OF u;
    -- a new statement, so a new snapshot: it sees what was committed while we waited
    SELECT u.id, t.name AS plan, t.watchlist_limit, count(*) AS watched INTO over
    FROM pounce.users AS u
    JOIN pounce.tiers AS t USING (tier)
    JOIN pounce.watched_domains AS w ON w.user_id = u.id
    WHERE u.id IN (SELECT user_id FROM new_rows)
    GROUP BY u.id, t.name, t.watchlist_limit
    HAVING count(*) > t.watchlist_limit
    LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'P0001',
        MESSAGE = format('watchlist limit reached: the %s plan watches at most %s domains', over.plan,
                         over.watchlist_limit),
        DETAIL = format('This would make %s.', over.watched),
        HINT = 'Remove a domain from your watchlist or upgrade your plan.';
    END IF;
    touched := ARRAY(SELECT DISTINCT domain FROM new_rows);
  ELSIF TG_OP = 'DELETE' THEN
    touched := ARRAY(SELECT DISTINCT domain FROM old_rows);
  ELSE
    touched := ARRAY(SELECT domain FROM old_rows UNION SELECT domain FROM new_rows);
  END IF;
  PERFORM pounce.refresh_monitoring(touched);
  RETURN NULL;
END $$;
COMMENT ON FUNCTION pounce.watched_domains_changed() IS
  'Trigger: enforce the plan''s watchlist limit (race-safe) and refresh the monitoring of the domains involved.';

CREATE TRIGGER watched_domains_inserted AFTER INSERT ON pounce.watched_domains
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pounce.watched_domains_changed();
CREATE TRIGGER watched_domains_deleted AFTER DELETE ON pounce.watched_domains
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pounce.watched_domains_changed();
CREATE TRIGGER watched_domains_updated AFTER UPDATE ON pounce.watched_domains
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION pounce.watched_domains_changed();

-- users_tier_changed(): a plan change reschedules the member's domains at the new
-- plan's interval (an upgrade takes effect at once, not after the old interval).
CREATE FUNCTION pounce.users_tier_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  PERFORM pounce.refresh_monitoring(ARRAY(
    SELECT w.domain FROM pounce.watched_domains AS w WHERE w.user_id = NEW.id));
  RETURN NULL;
END $$;
COMMENT ON FUNCTION pounce.users_tier_changed() IS 'Trigger: reschedule a member''s watched domains after a plan change.';

CREATE TRIGGER users_tier_changed AFTER UPDATE OF tier ON pounce.users
  FOR EACH ROW WHEN (OLD.tier IS DISTINCT FROM NEW.tier)
  EXECUTE FUNCTION pounce.users_tier_changed();

-- -----------------------------------------------------------------------------
-- Bulk import
-- -----------------------------------------------------------------------------
-- domain_or_problem(name): the registrable domain of a name, or why it is not one
-- (instead of raising), so one bad name in an import does not sink the others.
CREATE FUNCTION pounce.domain_or_problem(name text, OUT domain text, OUT problem text)
LANGUAGE plpgsql STABLE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  domain := (pounce.parse_domain(name)).registrable;
EXCEPTION WHEN data_exception OR null_value_not_allowed THEN
  problem := SQLERRM;
END $$;
COMMENT ON FUNCTION pounce.domain_or_problem(text) IS 'Registrable domain of a name, or the reason it is invalid.';

CREATE FUNCTION api.import_watchlist(names text[])
RETURNS TABLE (name text, domain text, result text, message text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  me uuid := pounce.current_user_id();
  room integer;
BEGIN
  IF me IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'sign in first';
  END IF;
  IF cardinality(names) > 10000 THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'at most 10,000 names per import';
  END IF;
  -- the same lock the limit trigger takes: the room counted here stays free
  SELECT t.watchlist_limit - (SELECT count(*) FROM pounce.watched_domains AS w WHERE w.user_id = me)
  INTO room
  FROM pounce.users AS u JOIN pounce.tiers AS t USING (tier)
  WHERE u.id = me
  FOR NO KEY UPDATE OF u;

  RETURN QUERY
  WITH input AS (
    SELECT i.name, i.n, p.domain, p.problem
    FROM unnest(names) WITH ORDINALITY AS i(name, n),
         LATERAL pounce.domain_or_problem(i.name) AS p),
  judged AS (
    SELECT input.*,
           row_number() OVER (PARTITION BY input.domain ORDER BY input.n) > 1 AS repeated,
           EXISTS (SELECT FROM pounce.watched_domains AS w
                   WHERE w.user_id = me AND w.domain = input.domain) AS already
    FROM input),
  fresh AS (
    SELECT judged.n, row_number() OVER (ORDER BY judged.n) AS k
    FROM judged WHERE judged.domain IS NOT NULL AND NOT judged.repeated AND NOT judged.already),
  added AS (
    INSERT INTO pounce.watched_domains (user_id, domain)
    SELECT me, j.domain FROM judged AS j JOIN fresh AS f USING (n)
    WHERE f.k <= room
    RETURNING watched_domains.domain)
  SELECT j.name, j.domain,
         CASE WHEN j.problem IS NOT NULL THEN 'invalid'
              WHEN j.repeated THEN 'duplicate'
              WHEN j.already THEN 'already_watched'
              WHEN f.k <= room THEN 'added'
              ELSE 'limit_reached' END,
         CASE WHEN j.problem IS NOT NULL THEN j.problem
              WHEN j.repeated THEN 'listed earlier in this import'
              WHEN j.already THEN 'already on your watchlist'
              WHEN f.k <= room THEN NULL
              ELSE 'your plan''s watchlist limit is reached' END
  FROM judged AS j LEFT JOIN fresh AS f USING (n)
  ORDER BY j.n;
END $$;
COMMENT ON FUNCTION api.import_watchlist(text[]) IS
  'Add many names to your watchlist in one call. One row per name, in order: {name, domain, result, message}, '
  'result is added, already_watched, duplicate, invalid (message says why) or limit_reached.';
GRANT EXECUTE ON FUNCTION api.import_watchlist(text[]) TO member;

-- ---- sql/watch/checks.sql ----
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

-- ---- sql/watch/api.sql ----
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
  SELECT t.name, t.health_refreshes_per_hour AS per_hour INTO plan
  FROM pounce.users AS u JOIN pounce.tiers AS t USING (tier) WHERE u.id = me
  FOR NO KEY UPDATE OF u;
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
