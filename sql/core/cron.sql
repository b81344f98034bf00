-- =============================================================================
-- Scheduled jobs (pg_cron)
-- =============================================================================
-- Jobs are declared as rows here, next to nothing else, so an operator reads one table
-- to know what runs when. pounce.sync_cron() makes pg_cron's job list match it; it is
-- run by `pounce db migrate` in the database named by cron.database_name (elsewhere it
-- does nothing). Change a schedule with UPDATE pounce.cron_jobs + SELECT pounce.sync_cron().
CREATE TABLE pounce.cron_jobs (
  jobname      text PRIMARY KEY CHECK (jobname ~ '^pounce\.[a-z_]+$'),
  schedule     text NOT NULL,
  command      text NOT NULL,
  description  text NOT NULL
);
COMMENT ON TABLE pounce.cron_jobs IS 'Declared pg_cron jobs; pounce.sync_cron() applies them.';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.prune_notifications', '17 3 * * *', 'SELECT pounce.prune_notifications()',
   'delete read notifications older than 180 days'),
  ('pounce.prune_ingest_rejects', '23 3 * * *', 'SELECT pounce.prune_ingest_rejects()',
   'delete ingest rejects older than 30 days');

-- sync_cron(): schedule every declared job, unschedule pounce.* jobs no longer declared.
-- Returns the number of declared jobs, or NULL when pg_cron is not in this database.
CREATE FUNCTION pounce.sync_cron() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  IF to_regnamespace('cron') IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM cron.unschedule(j.jobid)
  FROM cron.job AS j
  WHERE j.jobname LIKE 'pounce.%'
    AND j.jobname NOT IN (SELECT jobname FROM pounce.cron_jobs);
  PERFORM cron.schedule(d.jobname, d.schedule, d.command) FROM pounce.cron_jobs AS d;
  RETURN (SELECT count(*) FROM pounce.cron_jobs);
END $$;
COMMENT ON FUNCTION pounce.sync_cron() IS 'Make pg_cron''s jobs match pounce.cron_jobs (superuser; run by pounce db migrate).';
