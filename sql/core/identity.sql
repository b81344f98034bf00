-- =============================================================================
-- Identity: plans, users, passwords, JWTs, the request check
-- =============================================================================

-- -----------------------------------------------------------------------------
-- Plans (tiers) are data: every limit a feature enforces is read from here.
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.tiers (
  tier                       text PRIMARY KEY CHECK (tier ~ '^[a-z]+$'),
  name                       text NOT NULL,
  rank                       smallint NOT NULL UNIQUE,
  price_usd_month            numeric(8,2) NOT NULL CHECK (price_usd_month >= 0),
  watchlist_limit            integer NOT NULL CHECK (watchlist_limit >= 0),
  check_interval             interval NOT NULL CHECK (check_interval >= interval '1 minute'),
  sniper_alert_limit         integer NOT NULL CHECK (sniper_alert_limit >= 0),
  listing_limit              integer NOT NULL CHECK (listing_limit >= 0),
  api_requests_per_minute    integer NOT NULL CHECK (api_requests_per_minute > 0),
  health_refreshes_per_hour  integer NOT NULL CHECK (health_refreshes_per_hour >= 0),
  tld_price_alert_limit      integer NOT NULL CHECK (tld_price_alert_limit >= 0)
);
COMMENT ON TABLE pounce.tiers IS 'Plans and their limits; features read limits from here, never from code.';

INSERT INTO pounce.tiers VALUES
  ('scout',  'Scout',  1,  0.00,   5, interval '24 hours',   2,  1,   60,  2,   5),
  ('trader', 'Trader', 2,  9.00,  50, interval '1 hour',    10, 10,  300, 10,  50),
  ('tycoon', 'Tycoon', 3, 29.00, 500, interval '10 minutes', 50, 50, 1200, 60, 500);

-- -----------------------------------------------------------------------------
-- Input checks, shared by the table constraints and the API's error messages
-- -----------------------------------------------------------------------------

-- email_problem(email): NULL when the address is acceptable, else why not.
CREATE FUNCTION pounce.email_problem(email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE
  WHEN email IS NULL OR email = '' THEN 'an email address is required'
  WHEN length(email) > 254 THEN 'an email address has at most 254 characters'
  WHEN email !~ '^[A-Za-z0-9.!#$%&''*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$'
    THEN 'not an email address (expected name@example.com)'
  WHEN split_part(email, '@', 1) ~ '(^\.|\.$|\.\.)' THEN 'misplaced dot before the @'
END;
COMMENT ON FUNCTION pounce.email_problem(text) IS 'NULL if the e-mail address is acceptable, otherwise the reason.';

-- password_problem(password, email): NULL when strong enough, else why not.
-- bcrypt only reads 72 bytes, so longer passwords would silently lose their tail.
CREATE FUNCTION pounce.password_problem(password text, email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN CASE
  WHEN password IS NULL OR length(password) < 10 THEN 'a password needs at least 10 characters'
  WHEN octet_length(password) > 72 THEN 'a password has at most 72 bytes'
  WHEN password ~ '^(.)\1*$' THEN 'a password must not repeat one character'
  WHEN (password ~ '[A-Za-z]')::int + (password ~ '[0-9]')::int + (password ~ '[^A-Za-z0-9]')::int < 2
    THEN 'a password must mix letters with digits or symbols'
  WHEN length(split_part(email, '@', 1)) >= 4
       AND strpos(lower(password), lower(split_part(email, '@', 1))) > 0
    THEN 'a password must not contain the email address'
END;
COMMENT ON FUNCTION pounce.password_problem(text, text) IS 'NULL if the password is acceptable for this e-mail, otherwise the reason.';

-- hash_password(password): a bcrypt hash at the configured cost (pounce.settings).
CREATE FUNCTION pounce.hash_password(password text) RETURNS text
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
RETURN public.crypt(password, public.gen_salt('bf', pounce.setting('bcrypt_cost')::int));
COMMENT ON FUNCTION pounce.hash_password(text) IS 'bcrypt hash of a password at the configured cost.';

-- password_matches(password, hash): whether the password is the one hashed (NULL: no).
CREATE FUNCTION pounce.password_matches(password text, password_hash text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN public.crypt(coalesce(password, ''), password_hash) IS NOT DISTINCT FROM password_hash;
COMMENT ON FUNCTION pounce.password_matches(text, text) IS 'True when the password hashes to password_hash.';

-- -----------------------------------------------------------------------------
-- Users
-- -----------------------------------------------------------------------------
CREATE TABLE pounce.users (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email          public.citext NOT NULL UNIQUE
                 CONSTRAINT users_email_valid CHECK (pounce.email_problem(email::text) IS NULL),
  password_hash  text NOT NULL CONSTRAINT users_password_is_bcrypt CHECK (password_hash ~ '^\$2[abxy]\$\d\d\$'),
  role           text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
  tier           text NOT NULL DEFAULT 'scout' REFERENCES pounce.tiers ON UPDATE CASCADE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_login_at  timestamptz,
  disabled       boolean NOT NULL DEFAULT false
);
CREATE INDEX users_tier ON pounce.users (tier);
COMMENT ON TABLE pounce.users IS 'Accounts. The JWT "sub" claim is users.id; "role" is users.role.';

ALTER TABLE pounce.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE pounce.users FORCE ROW LEVEL SECURITY;

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

-- -----------------------------------------------------------------------------
-- The request's identity
-- -----------------------------------------------------------------------------

-- current_user_id(): the signed-in user's id from the JWT claims PostgREST sets per
-- request, or NULL for anon. Policies compare rows against it.
CREATE FUNCTION pounce.current_user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN nullif(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub', '')::uuid;
COMMENT ON FUNCTION pounce.current_user_id() IS 'Signed-in user id (JWT sub claim) or NULL.';

-- current_role_claim(): 'anon', 'member' or 'admin' as the JWT says (anon if none).
CREATE FUNCTION pounce.current_role_claim() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role', 'anon');
COMMENT ON FUNCTION pounce.current_role_claim() IS 'Role claim of the request JWT, anon when there is none.';

-- Policies: a member sees only their own row, an admin every row. SECURITY DEFINER
-- functions run as pounce_owner and filter explicitly (FORCE makes even the owner
-- subject to policies, so its access is stated here rather than implied).
CREATE POLICY users_self ON pounce.users FOR SELECT TO member
  USING (id = pounce.current_user_id());
CREATE POLICY users_admin_read ON pounce.users FOR SELECT TO admin USING (true);
CREATE POLICY users_internal ON pounce.users TO pounce_owner USING (true) WITH CHECK (true);

GRANT SELECT (id, email, role, tier, created_at, last_login_at, disabled) ON pounce.users TO member;
GRANT SELECT ON pounce.tiers TO anon, member;
GRANT EXECUTE ON FUNCTION pounce.current_user_id(), pounce.current_role_claim() TO anon, member, admin;

-- -----------------------------------------------------------------------------
-- JWT (HS256), signed inside the database with pgcrypto
-- -----------------------------------------------------------------------------

-- base64url(bytes): RFC 4648 section 5 encoding without padding, as JWS requires.
CREATE FUNCTION pounce.base64url(data bytea) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
RETURN rtrim(translate(encode(data, 'base64'), E'+/\n', '-_'), '=');

-- jwt_sign(claims): a compact HS256 JWS of the claims with the configured secret.
CREATE FUNCTION pounce.jwt_sign(claims jsonb) RETURNS text
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT signing_input || '.' || pounce.base64url(
           public.hmac(convert_to(signing_input, 'UTF8'), convert_to(pounce.setting('jwt_secret'), 'UTF8'), 'sha256'))
  FROM (SELECT pounce.base64url(convert_to('{"alg":"HS256","typ":"JWT"}', 'UTF8')) || '.' ||
               pounce.base64url(convert_to(claims::text, 'UTF8')) AS signing_input) AS s;
END;
COMMENT ON FUNCTION pounce.jwt_sign(jsonb) IS 'HS256 JWT of the claims, signed with the shared secret (also PostgREST''s jwt-secret).';

-- session_for(user): the token and facts a client keeps after signing in.
CREATE FUNCTION pounce.session_for(user_id uuid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT jsonb_build_object(
           'token', pounce.jwt_sign(jsonb_build_object(
              'sub', u.id, 'role', u.role, 'email', u.email::text,
              'iat', floor(extract(epoch FROM now()))::bigint,
              'exp', floor(extract(epoch FROM s.expires_at))::bigint)),
           'user_id', u.id,
           'role', u.role,
           'tier', u.tier,
           'expires_at', s.expires_at)
  FROM pounce.users AS u,
       LATERAL (SELECT now() + pounce.setting('jwt_ttl')::interval AS expires_at) AS s
  WHERE u.id = session_for.user_id;
END;

-- -----------------------------------------------------------------------------
-- The db-pre-request check (PostgREST runs it before every request)
-- -----------------------------------------------------------------------------
-- A valid token outlives a change to its account: refuse tokens of disabled or deleted
-- accounts, and tokens whose role claim no longer matches the account's role. It lives
-- in api because PostgREST calls it as the request's role, which may use no other
-- schema; as /rpc/check_request it doubles as a "is my token still good?" probe.
CREATE FUNCTION api.check_request() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  claim_role text := pounce.current_role_claim();
  account record;
BEGIN
  IF claim_role NOT IN ('member', 'admin') THEN
    RETURN;
  END IF;
  SELECT u.role, u.disabled INTO account FROM pounce.users AS u WHERE u.id = pounce.current_user_id();
  IF NOT FOUND OR account.disabled THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'account disabled',
      DETAIL = 'this token belongs to an account that is disabled or no longer exists';
  END IF;
  IF account.role <> claim_role THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'token role is out of date',
      HINT = 'sign in again to get a token for the account''s current role';
  END IF;
END $$;
COMMENT ON FUNCTION api.check_request() IS
  'PostgREST db-pre-request: rejects tokens of disabled or deleted accounts and stale role claims (403). '
  'Call it to check that a token is still good.';
GRANT EXECUTE ON FUNCTION api.check_request() TO anon, member, admin;

-- -----------------------------------------------------------------------------
-- API: sign up, sign in, who am I, plans
-- -----------------------------------------------------------------------------

CREATE FUNCTION api.signup(email text, password text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  problem text;
  new_id uuid;
BEGIN
  email := btrim(email);
  problem := pounce.email_problem(email);
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'invalid email: ' || problem;
  END IF;
  problem := pounce.password_problem(password, email);
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'weak password: ' || problem;
  END IF;
  BEGIN
    INSERT INTO pounce.users (email, password_hash)
    VALUES (email, pounce.hash_password(password))
    RETURNING id INTO new_id;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION USING ERRCODE = '23505', MESSAGE = 'an account with this email already exists',
      HINT = 'sign in with api.login, or use another address';
  END;
  RETURN pounce.session_for(new_id);
END $$;
COMMENT ON FUNCTION api.signup(text, text) IS
  'Create an account (Scout plan) and sign in. Returns {token, user_id, role, tier, expires_at}. '
  'Errors: 400 invalid email or weak password (the message says why), 409 email already registered.';

-- Unknown e-mail and wrong password fail alike, after the same bcrypt work, so neither
-- the answer nor its timing tells whether an address has an account.
CREATE FUNCTION api.login(email text, password text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  account record;
BEGIN
  SELECT u.id, u.password_hash, u.disabled INTO account
  FROM pounce.users AS u WHERE u.email = btrim(login.email)::public.citext;
  IF NOT FOUND THEN
    PERFORM pounce.hash_password(coalesce(password, ''));
    RAISE EXCEPTION USING ERRCODE = '28P01', MESSAGE = 'invalid email or password';
  END IF;
  IF NOT pounce.password_matches(password, account.password_hash) THEN
    RAISE EXCEPTION USING ERRCODE = '28P01', MESSAGE = 'invalid email or password';
  END IF;
  IF account.disabled THEN
    RAISE EXCEPTION USING ERRCODE = '28000', MESSAGE = 'account disabled',
      HINT = 'contact support to re-enable the account';
  END IF;
  UPDATE pounce.users SET last_login_at = now() WHERE id = account.id;
  RETURN pounce.session_for(account.id);
END $$;
COMMENT ON FUNCTION api.login(text, text) IS
  'Sign in. Returns {token, user_id, role, tier, expires_at}; the token is an HS256 JWT for the Authorization header. '
  'Errors: 403 invalid email or password (the same for both), 403 account disabled.';

GRANT EXECUTE ON FUNCTION api.signup(text, text), api.login(text, text) TO anon, member;

-- A fresh token for the signed-in account (the pre-request check has already refused
-- disabled accounts and stale roles), so a client can stay signed in without a password.
CREATE FUNCTION api.refresh_token() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  session jsonb := pounce.session_for(pounce.current_user_id());
BEGIN
  IF session IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'sign in first';
  END IF;
  RETURN session;
END $$;
COMMENT ON FUNCTION api.refresh_token() IS
  'A new token for the signed-in account, with a new expiry. Same answer as api.login.';

CREATE FUNCTION api.change_password(current_password text, new_password text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  account record;
  problem text;
BEGIN
  SELECT u.id, u.email::text AS email, u.password_hash INTO account
  FROM pounce.users AS u WHERE u.id = pounce.current_user_id();
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = 'sign in first';
  END IF;
  IF NOT pounce.password_matches(current_password, account.password_hash) THEN
    RAISE EXCEPTION USING ERRCODE = '28P01', MESSAGE = 'current password is wrong';
  END IF;
  problem := pounce.password_problem(new_password, account.email);
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'weak password: ' || problem;
  END IF;
  UPDATE pounce.users
  SET password_hash = pounce.hash_password(new_password)
  WHERE id = account.id;
END $$;
COMMENT ON FUNCTION api.change_password(text, text) IS
  'Change your password. Errors: 403 current password is wrong, 400 weak password (the message says why).';

GRANT EXECUTE ON FUNCTION api.refresh_token(), api.change_password(text, text) TO member;

CREATE VIEW api.me WITH (security_invoker = true) AS
SELECT u.id, u.email::text AS email, u.role, u.tier, t.name AS tier_name, u.created_at, u.last_login_at,
       t.watchlist_limit, t.check_interval, t.sniper_alert_limit, t.listing_limit,
       t.api_requests_per_minute, t.health_refreshes_per_hour, t.tld_price_alert_limit
FROM pounce.users AS u
JOIN pounce.tiers AS t USING (tier)
WHERE u.id = pounce.current_user_id();
COMMENT ON VIEW api.me IS 'The signed-in account and the limits of its plan (one row; empty for anon).';
GRANT SELECT ON api.me TO member;

CREATE VIEW api.tiers WITH (security_invoker = true) AS
SELECT tier, name, rank, price_usd_month, watchlist_limit, check_interval, sniper_alert_limit,
       listing_limit, api_requests_per_minute, health_refreshes_per_hour, tld_price_alert_limit
FROM pounce.tiers;
COMMENT ON VIEW api.tiers IS 'Plans (Scout, Trader, Tycoon) and their limits.';
GRANT SELECT ON api.tiers TO anon, member;
