SET ROLE pounce_owner;

-- ---- sql/sources/registry.sql (frozen copy) ----
-- =============================================================================
-- Sources: where the outside world's market data comes from, and when
-- =============================================================================
-- One row per upstream file or API: an aftermarket inventory (auctions) or a
-- registrar's price list (tld_price). Every minute pg_cron runs
-- pounce.enqueue_due_sources(), which queues a `fetch_source` job for each enabled
-- source whose next run is due; collectors (`pounce worker`) claim it like any other
-- job, download, parse (collectors/sources/) and hand batches to
-- collector.ingest_auctions / collector.ingest_tld_prices, then report the outcome with
-- collector.record_source_fetches(). Operators manage sources with SQL:
--
--   UPDATE pounce.sources SET enabled = false WHERE name = 'godaddy';
--   UPDATE pounce.sources SET schedule = '15 minutes', next_run_at = now() WHERE name = 'porkbun';
--   SELECT pounce.fetch_source_now('godaddy');
--
-- A fetch that fails stores last_error and leaves everything else alone: the source's
-- data stays what its last good fetch made it (auctions are ended only after a complete
-- file; the ETag is kept only from a complete one).

-- -----------------------------------------------------------------------------
-- Table
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.sources (
  name             text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,39}$'),
  kind             text NOT NULL CHECK (kind IN ('auction', 'tld_price')),
  format           text NOT NULL,
  url              text NOT NULL CHECK (url ~ '^(https?|file)://'),
  -- the platform (auctions) or price source (tld_price: the registrar unless the rows
  -- name one) that rows are stored under; the source's name when NULL
  platform         text CHECK (platform ~ '^[a-z0-9][a-z0-9_.-]{0,39}$'),
  schedule         interval NOT NULL DEFAULT interval '1 hour' CHECK (schedule >= interval '1 minute'),
  enabled          boolean NOT NULL DEFAULT true,
  options          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
  next_run_at      timestamptz NOT NULL DEFAULT now(),
  etag             text,
  last_modified    text,
  last_attempt_at  timestamptz,
  last_success_at  timestamptz,
  last_error       text,
  last_error_at    timestamptz,
  last_counts      jsonb,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sources_format_fits_kind CHECK (
    (kind = 'auction' AND format IN ('godaddy_json', 'snapnames_csv', 'pending_delete'))
    OR (kind = 'tld_price' AND format IN ('porkbun_json', 'price_sheet_csv')))
);
COMMENT ON TABLE pounce.sources IS
  'Upstream auction files and price lists, fetched on a schedule by fetch_source jobs (pounce.enqueue_due_sources).';
COMMENT ON COLUMN pounce.sources.format IS
  'Parser: godaddy_json (zipped {"meta","data"} inventory), snapnames_csv, pending_delete (one name a line, '
  'drop date in the file name), porkbun_json (pricing API), price_sheet_csv (TLD,Registration,Renewal,...).';
COMMENT ON COLUMN pounce.sources.options IS
  'Fetch and parse settings: timeout (s), retries, backoff (s), max_bytes, max_unpacked_bytes, batch_size, connections, '
  'method, body, timezone (snapnames_csv), drop_time and price (pending_delete), registrar (price_sheet_csv).';
COMMENT ON COLUMN pounce.sources.etag IS 'ETag of the last complete fetch, sent as If-None-Match.';
COMMENT ON COLUMN pounce.sources.last_modified IS 'Last-Modified of the last complete fetch, sent as If-Modified-Since.';
COMMENT ON COLUMN pounce.sources.last_error IS
  'Why the latest fetch failed (NULL after a success): HTTP status, timeout, size limit, changed format.';
COMMENT ON COLUMN pounce.sources.last_counts IS 'What the last complete fetch ingested (inserted, updated, unchanged, rejected, ended...).';

-- what the scheduler reads every minute
CREATE INDEX sources_due ON pounce.sources (next_run_at) WHERE enabled;

-- -----------------------------------------------------------------------------
-- Scheduling (pg_cron, operators)
-- -----------------------------------------------------------------------------

-- enqueue_due_sources(): one fetch_source job for every enabled source that is due, in
-- one statement; the next run moves one schedule ahead. The dedup key (the source's
-- name) keeps a slow source from piling up jobs. Returns how many were queued.
CREATE FUNCTION pounce.enqueue_due_sources() RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH due AS (
    UPDATE pounce.sources AS s
    SET next_run_at = greatest(s.next_run_at + s.schedule, now())
    WHERE s.enabled AND s.next_run_at <= now()
    RETURNING s.name),
  queued AS (
    SELECT pounce.enqueue('fetch_source', jsonb_build_object('source', due.name), 'source:' || due.name) AS id
    FROM due)
  SELECT count(*)::integer FROM queued;
END;
COMMENT ON FUNCTION pounce.enqueue_due_sources() IS
  'Queue a fetch_source job for each enabled source that is due (pg_cron, every minute); returns how many.';

-- fetch_source_now(name): operator action; queue a fetch of one source at once
-- (enabled or not). Returns the job id.
CREATE FUNCTION pounce.fetch_source_now(source_name text) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pounce, pg_catalog, public
AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM pounce.sources WHERE name = source_name) THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = format('no source named %L', source_name);
  END IF;
  RETURN pounce.enqueue('fetch_source', jsonb_build_object('source', source_name), 'source:' || source_name);
END $$;
COMMENT ON FUNCTION pounce.fetch_source_now(text) IS 'Queue a fetch of one source now; returns the job id.';

INSERT INTO pounce.cron_jobs VALUES
  ('pounce.enqueue_due_sources', '* * * * *', 'SELECT pounce.enqueue_due_sources()',
   'queue a fetch_source job for every source that is due');

-- -----------------------------------------------------------------------------
-- Collector side (SECURITY DEFINER: the collector role holds no table privileges)
-- -----------------------------------------------------------------------------

-- source(name): what a collector needs to fetch a source: its format, URL, options
-- and the validators of its last complete fetch. No row when the source is gone.
CREATE FUNCTION collector.source(source_name text)
RETURNS TABLE (name text, kind text, format text, url text, platform text, options jsonb, enabled boolean,
               etag text, last_modified text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT s.name, s.kind, s.format, s.url, coalesce(s.platform, s.name), s.options, s.enabled,
         s.etag, s.last_modified
  FROM pounce.sources AS s WHERE s.name = source.source_name;
END;
COMMENT ON FUNCTION collector.source(text) IS 'A source''s fetch settings for a collector (format, url, options, validators).';

-- record_source_fetches(results): the outcomes of fetches, [{"source", "status":
-- "ok" | "not_modified" | "error", "error", "counts", "etag", "last_modified"}].
-- ok: success time, counts and validators are stored and the error cleared;
-- not_modified (HTTP 304): the data is current, so only the success time moves;
-- error: only the error is stored (data, counts and validators stay the last good ones).
-- Other statuses (a fetch skipped because another collector runs the source) change
-- nothing. Returns how many sources were updated.
CREATE FUNCTION collector.record_source_fetches(results jsonb) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH input AS (
    SELECT r ->> 'source' AS name, coalesce(r ->> 'status', 'error') AS status,
           left(r ->> 'error', 2000) AS error, r -> 'counts' AS counts,
           r ->> 'etag' AS etag, r ->> 'last_modified' AS last_modified
    FROM jsonb_array_elements(CASE jsonb_typeof(results) WHEN 'array' THEN results ELSE '[]' END) AS r),
  written AS (
    UPDATE pounce.sources AS s
    SET last_attempt_at = now(),
        last_success_at = CASE WHEN i.status IN ('ok', 'not_modified') THEN now() ELSE s.last_success_at END,
        last_error = CASE WHEN i.status IN ('ok', 'not_modified') THEN NULL
                          ELSE coalesce(i.error, 'unknown error') END,
        last_error_at = CASE WHEN i.status IN ('ok', 'not_modified') THEN s.last_error_at ELSE now() END,
        last_counts = CASE WHEN i.status = 'ok' THEN i.counts ELSE s.last_counts END,
        etag = CASE WHEN i.status = 'ok' THEN i.etag ELSE s.etag END,
        last_modified = CASE WHEN i.status = 'ok' THEN i.last_modified ELSE s.last_modified END
    FROM input AS i
    WHERE s.name = i.name AND i.status IN ('ok', 'not_modified', 'error')
    RETURNING 1)
  SELECT count(*)::integer FROM written;
END;
COMMENT ON FUNCTION collector.record_source_fetches(jsonb) IS
  'Store fetch outcomes on pounce.sources: success (counts, ETag), 304, or the error; returns how many rows changed.';

GRANT EXECUTE ON FUNCTION collector.source(text), collector.record_source_fetches(jsonb) TO collector;

-- -----------------------------------------------------------------------------
-- Admin view
-- -----------------------------------------------------------------------------
CREATE VIEW api.sources WITH (security_invoker = true) AS
SELECT name, kind, format, url, coalesce(platform, name) AS platform, schedule, enabled, next_run_at,
       last_attempt_at, last_success_at, last_error, last_error_at, last_counts
FROM pounce.sources;
COMMENT ON VIEW api.sources IS
  'Admin: every market-data source with its schedule, last success, last error and the counts of its last fetch.';
GRANT SELECT ON api.sources TO admin;
GRANT SELECT ON pounce.sources TO admin;
