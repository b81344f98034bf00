SET ROLE pounce_owner;

-- ---- sql/core/identity.sql: pounce.lock_plan ----
-- lock_plan(user_id): the member's plan, with the member's row locked until the
-- transaction ends. Every plan limit is checked under this one lock: of two concurrent
-- additions by one member the second waits here, and its count (a later statement, so
-- a later snapshot) includes the first's rows. FOR NO KEY UPDATE, not FOR UPDATE: an
-- insert of a row that references the member already holds KEY SHARE on it (the
-- foreign key), which FOR UPDATE would turn into a deadlock between two such inserts.
-- Several members: lock them in id order, so two transactions cannot deadlock.
CREATE FUNCTION pounce.lock_plan(user_id uuid) RETURNS pounce.tiers
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT t FROM pounce.users AS u JOIN pounce.tiers AS t ON t.tier = u.tier  -- whole row: survives new plan columns
  WHERE u.id = lock_plan.user_id
  FOR NO KEY UPDATE OF u;
END;
COMMENT ON FUNCTION pounce.lock_plan(uuid) IS
  'The member''s plan (tiers row), their users row locked FOR NO KEY UPDATE: the lock every plan limit takes.';

-- ---- sql/market/listings.sql: pounce.listing_write takes pounce.lock_plan ----
CREATE OR REPLACE FUNCTION pounce.listing_write()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    parts pounce.domain_parts;
    allowed integer;
    used integer;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.domain IS DISTINCT FROM OLD.domain THEN
        parts := pounce.parse_domain(NEW.domain);
        IF parts.subdomain IS NOT NULL THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = format('"%s" is not a registrable domain', NEW.domain),
                HINT = format('List the registrable name, %s.', parts.registrable);
        END IF;
        NEW.domain := parts.registrable;
        NEW.sld := parts.sld;
        NEW.tld := parts.tld;
    END IF;

    IF TG_OP = 'INSERT' THEN
        NEW.verified_at := NULL;
        NEW.created_at := now();
        allowed := (pounce.lock_plan(NEW.seller_id)).listing_limit;
        SELECT count(*) INTO used FROM pounce.listings
        WHERE seller_id = NEW.seller_id AND status IN ('draft', 'active');
        IF used >= allowed THEN
            RAISE EXCEPTION USING ERRCODE = 'P0001',
                MESSAGE = format('listing limit reached: your plan allows %s open listings', allowed),
                HINT = 'Withdraw a listing or upgrade your plan.';
        END IF;
    ELSE
        NEW.id := OLD.id;
        NEW.seller_id := OLD.seller_id;
        NEW.created_at := OLD.created_at;
        NEW.verification_token := OLD.verification_token;
        IF NEW.domain IS DISTINCT FROM OLD.domain THEN
            IF OLD.status <> 'draft' THEN
                RAISE EXCEPTION USING ERRCODE = 'P0001',
                    MESSAGE = 'only a draft listing may change its domain';
            END IF;
            NEW.verified_at := NULL;
            NEW.verification_token := encode(gen_random_bytes(16), 'hex');
        END IF;
    END IF;
    IF NEW.status = 'active' AND NEW.verified_at IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'P0001',
            MESSAGE = format('listing of %s is not verified yet', NEW.domain),
            HINT = format('Publish TXT "pounce-verify=%s" at _pounce.%s, then call /rpc/verify_listing.',
                          NEW.verification_token, NEW.domain);
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- ---- sql/watch/watchlist.sql: pounce.watched_domains_changed takes pounce.lock_plan ----
CREATE OR REPLACE FUNCTION pounce.watched_domains_changed() RETURNS trigger
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

-- ---- sql/watch/watchlist.sql: api.import_watchlist takes pounce.lock_plan ----
CREATE OR REPLACE FUNCTION api.import_watchlist(names text[])
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

-- ---- sql/watch/api.sql: api.refresh_health takes pounce.lock_plan ----
CREATE OR REPLACE FUNCTION api.refresh_health(domain text) RETURNS jsonb
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

-- ---- sql/tld/changes.sql: pounce.tld_price_alert_check takes pounce.lock_plan ----
CREATE OR REPLACE FUNCTION pounce.tld_price_alert_check() RETURNS trigger
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
