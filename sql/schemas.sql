-- =============================================================================
-- Schemas
-- =============================================================================
--   pounce     private tables, types and internal functions; never granted to web roles
--   api        what the web sees through PostgREST: views and functions only
--   collector  functions the collectors call; only the collector role may execute them
CREATE SCHEMA pounce AUTHORIZATION pounce_owner;
CREATE SCHEMA api AUTHORIZATION pounce_owner;
CREATE SCHEMA collector AUTHORIZATION pounce_owner;

COMMENT ON SCHEMA api IS 'Pounce REST API: domain watchlist, TLD prices, market feed and alerts.';

GRANT USAGE ON SCHEMA api TO anon, member, admin;
GRANT USAGE ON SCHEMA collector TO collector;

-- Everything below is created by (and so owned by) pounce_owner.
SET ROLE pounce_owner;
