-- =============================================================================
-- Ingestion rejects (shared by every collector.ingest_* function)
-- =============================================================================
-- A malformed row never sinks its batch: it lands here with the reason, verbatim, for
-- an operator to inspect, while the good rows beside it are stored.
CREATE TABLE pounce.ingest_rejects (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source       text NOT NULL,
  reason       text NOT NULL,
  raw          jsonb NOT NULL,
  received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_rejects_source_recent ON pounce.ingest_rejects (source, received_at DESC);
COMMENT ON TABLE pounce.ingest_rejects IS 'Rows refused by collector.ingest_* functions, with the reason and the raw row.';

-- try_timestamptz(value): the timestamp a text spells, or NULL when it spells none; for
-- ingest functions, which turn a bad value into a reject instead of an error.
CREATE FUNCTION pounce.try_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
    RETURN value::timestamptz;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION pounce.try_timestamptz(text) IS 'A text cast to timestamptz, NULL when it is not one.';

-- prune_ingest_rejects(keep): rejects are for inspection, not for ever. Returns how many
-- were deleted.
CREATE FUNCTION pounce.prune_ingest_rejects(keep interval DEFAULT interval '30 days') RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH gone AS (
    DELETE FROM pounce.ingest_rejects WHERE received_at < now() - keep
    RETURNING 1)
  SELECT count(*) FROM gone;
END;
COMMENT ON FUNCTION pounce.prune_ingest_rejects(interval) IS 'Retention: deletes ingest rejects older than keep (pg_cron, daily).';
