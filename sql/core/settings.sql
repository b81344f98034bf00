-- =============================================================================
-- Settings and secrets
-- =============================================================================
-- One row per setting. Secrets (the JWT secret) live here rather than in a GUC, where
-- any session could read them with current_setting(); no web role can read this table,
-- only SECURITY DEFINER functions owned by pounce_owner. `pounce db migrate` writes the
-- secrets from the environment (or the embedded cluster's generated secrets file).
CREATE TABLE pounce.settings (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
  value       text NOT NULL,
  is_secret   boolean NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE pounce.settings IS 'Configuration read by database functions; secrets are never exposed.';

INSERT INTO pounce.settings (name, value, is_secret) VALUES
  ('jwt_ttl', '12 hours', false),   -- lifetime of tokens from api.login / api.signup
  ('bcrypt_cost', '10', false);     -- pgcrypto bf cost for new password hashes

-- setting(name): the value, or an error naming the missing setting.
CREATE FUNCTION pounce.setting(setting_name text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
  v text;
BEGIN
  SELECT value INTO v FROM pounce.settings WHERE name = setting_name;
  IF v IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = 'P0002',
      MESSAGE = format('setting "%s" is not configured', setting_name),
      HINT = 'run `pounce db migrate`, which writes the settings from the environment';
  END IF;
  RETURN v;
END $$;
COMMENT ON FUNCTION pounce.setting(text) IS 'Value of a pounce.settings row; raises if it is missing.';
