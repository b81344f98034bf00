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
-- insert it enforces every affected member's plan limit, race-safe: it takes each
-- member's pounce.lock_plan (in id order) before counting.
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
    PERFORM pounce.lock_plan(m.user_id) FROM (SELECT DISTINCT user_id FROM new_rows ORDER BY 1) AS m;
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
  -- the lock the limit trigger takes: the room counted here (next statement) stays free
  PERFORM pounce.lock_plan(me);
  SELECT t.watchlist_limit - (SELECT count(*) FROM pounce.watched_domains AS w WHERE w.user_id = me)
  INTO room
  FROM pounce.users AS u JOIN pounce.tiers AS t USING (tier)
  WHERE u.id = me;

  RETURN QUERY
  WITH input AS (
    -- one bad name does not sink the others: it is judged invalid with parse_domain's reason
    SELECT i.name, i.n, (p.parts).registrable AS domain, p.problem
    FROM unnest(names) WITH ORDINALITY AS i(name, n),
         LATERAL pounce.try_parse_domain(i.name) AS p),
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
