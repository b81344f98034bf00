-- =============================================================================
-- Roles (cluster-wide)
-- =============================================================================
-- Roles belong to the cluster, not the database, so every database built from this
-- file shares them: create what is missing, then (re)state each role's attributes.
--
--   pounce_owner   owns every schema object; SECURITY DEFINER functions run as it
--   authenticator  PostgREST / the local API server log in as it, then SET ROLE
--   anon           requests without a JWT
--   member         a signed-in user (JWT role claim "member")
--   admin          an operator (JWT role claim "admin"); also a member
--   collector      the data collectors' login; may only execute collector.*
DO $$
DECLARE
  role_name text;
BEGIN
  FOREACH role_name IN ARRAY ARRAY['pounce_owner', 'authenticator', 'anon', 'member', 'admin', 'collector'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- another database's migration created it meanwhile
      END;
    END IF;
  END LOOP;
END $$;

ALTER ROLE pounce_owner  NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE authenticator LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
ALTER ROLE anon          NOLOGIN NOSUPERUSER NOBYPASSRLS;
ALTER ROLE member        NOLOGIN NOSUPERUSER NOBYPASSRLS;
ALTER ROLE admin         NOLOGIN NOSUPERUSER NOBYPASSRLS;
ALTER ROLE collector     LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;

-- authenticator may become any web role, and nothing else.
GRANT anon, member, admin TO authenticator;
-- An admin is also a member: member policies and grants apply to admins too.
GRANT member TO admin;

-- Functions are not executable by PUBLIC unless granted: every grant is explicit.
ALTER DEFAULT PRIVILEGES FOR ROLE pounce_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
