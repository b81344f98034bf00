-- =============================================================================
-- Extensions
-- =============================================================================
-- In schema public, which every role can use (but not create in, since PG 15).
CREATE EXTENSION IF NOT EXISTS pg_trgm;             -- keyword search on names
CREATE EXTENSION IF NOT EXISTS pgcrypto;            -- bcrypt, HMAC for JWT and tokens
CREATE EXTENSION IF NOT EXISTS citext;              -- case-insensitive e-mail
CREATE EXTENSION IF NOT EXISTS vector;              -- name embeddings (pgvector)
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;  -- what the DBA tunes with

-- pg_cron can exist only in the database named by cron.database_name; other databases
-- built from this file (tests, the catalog check) simply have no cron schema.
DO $$
BEGIN
  IF current_database() = current_setting('cron.database_name', true) THEN
    CREATE EXTENSION IF NOT EXISTS pg_cron;
  END IF;
END $$;

-- HNSW indexes and iterative scans need pgvector 0.7 or newer.
DO $$
BEGIN
  IF (SELECT string_to_array(extversion, '.')::int[] FROM pg_extension WHERE extname = 'vector')
     < ARRAY[0, 7] THEN
    RAISE EXCEPTION 'pgvector 0.7 or newer is required';
  END IF;
END $$;
