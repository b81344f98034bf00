-- =============================================================================
-- Currencies
-- =============================================================================
-- Prices arrive in many currencies (auctions, registrar price lists). A price is valid
-- only in an ISO 4217 currency; usd_rate lets areas compare prices across currencies.
-- The codes are reference data (Debian's iso-codes, data/iso_4217.json) loaded by
-- load_currencies(); rates are operational data that a reload never touches.
CREATE TABLE pounce.currencies (
  code          text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
  name          text NOT NULL,
  numeric_code  text CHECK (numeric_code ~ '^[0-9]{3}$'),
  usd_rate      numeric CHECK (usd_rate > 0),
  rate_as_of    date,
  CHECK ((usd_rate IS NULL) = (rate_as_of IS NULL) OR code = 'USD')
);
COMMENT ON TABLE pounce.currencies IS 'ISO 4217 currencies; usd_rate (USD per unit) is set by operators, NULL when unknown.';
COMMENT ON COLUMN pounce.currencies.usd_rate IS 'US dollars per unit of this currency as of rate_as_of (USD: always 1).';

-- load_currencies: upserts the currencies of an iso-codes iso_4217.json document
-- ({"4217": [{"alpha_3", "name", "numeric"}, ...]}). Returns how many it holds. Codes no
-- longer listed are kept (historic prices may use them); rates are left as they are.
CREATE FUNCTION pounce.load_currencies(doc jsonb)
RETURNS integer
LANGUAGE plpgsql VOLATILE STRICT
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    loaded integer;
BEGIN
    IF jsonb_typeof(doc -> '4217') IS DISTINCT FROM 'array' OR jsonb_array_length(doc -> '4217') = 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'not an ISO 4217 document: expected {"4217": [...]}';
    END IF;

    WITH src AS (
        SELECT c.alpha_3 AS code, c.name, c."numeric" AS numeric_code
        FROM jsonb_to_recordset(doc -> '4217') AS c(alpha_3 text, name text, "numeric" text)
    ), upserted AS (
        INSERT INTO pounce.currencies AS cur (code, name, numeric_code, usd_rate, rate_as_of)
        SELECT code, name, numeric_code,
               CASE WHEN code = 'USD' THEN 1 END, NULL
        FROM src
        ON CONFLICT (code) DO UPDATE
            SET name = excluded.name, numeric_code = excluded.numeric_code
            WHERE (cur.name, cur.numeric_code) IS DISTINCT FROM (excluded.name, excluded.numeric_code)
        RETURNING 1
    )
    SELECT count(*) INTO loaded FROM src;
    RETURN loaded;
END;
$$;
COMMENT ON FUNCTION pounce.load_currencies(jsonb) IS 'Loads ISO 4217 codes (reference data); keeps operator-set rates.';

-- to_usd: an amount in US dollars, NULL when the currency has no known rate.
CREATE FUNCTION pounce.to_usd(amount numeric, currency text)
RETURNS numeric
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  SELECT round(amount * c.usd_rate, 2) FROM pounce.currencies AS c WHERE c.code = currency;
END;
COMMENT ON FUNCTION pounce.to_usd(numeric, text) IS 'Converts an amount to USD with the stored rate (NULL when unknown).';
