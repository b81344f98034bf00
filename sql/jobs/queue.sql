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
