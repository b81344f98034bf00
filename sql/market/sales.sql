-- =============================================================================
-- Market: comparable sales, and closing auctions that ended
-- =============================================================================

-- Sales are the evidence valuations stand on. Each carries its name vector (HNSW) so
-- "sales of names like this one" is an index scan. Sales are written rarely (auctions
-- that close, imported comparables), so the HNSW upkeep costs little.
CREATE TABLE pounce.sales (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  domain       text NOT NULL,
  sld          text NOT NULL,
  tld          text NOT NULL,
  price        numeric(14, 2) NOT NULL CHECK (price > 0),
  currency     text NOT NULL REFERENCES pounce.currencies,
  price_usd    numeric(14, 2) NOT NULL CHECK (price_usd > 0),
  sold_on      date NOT NULL,
  venue        text NOT NULL CHECK (venue ~ '^[a-z0-9][a-z0-9_.-]{0,39}$'),
  auction_id   bigint UNIQUE REFERENCES pounce.auctions ON DELETE SET NULL,
  recorded_at  timestamptz NOT NULL DEFAULT now(),
  name_vec     vector(64) NOT NULL GENERATED ALWAYS AS (pounce.name_vector(sld)) STORED,
  UNIQUE (domain, sold_on, venue),
  CHECK (domain = sld || '.' || tld)
);
CREATE INDEX sales_vec ON pounce.sales USING hnsw (name_vec vector_cosine_ops);
CREATE INDEX sales_tld_recent ON pounce.sales (tld, sold_on DESC);
COMMENT ON TABLE pounce.sales IS 'Comparable domain sales (venue: platform or marketplace); auctions that close with bids land here.';

-- close_ended_auctions(): active auctions whose end time passed close: a bid auction
-- with bids is sold (and becomes a sale at its last price), any other ends. One
-- statement, so an auction is closed and recorded together or not at all. Returns
-- the number of auctions closed.
CREATE FUNCTION pounce.close_ended_auctions()
RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pounce, pg_catalog, public
BEGIN ATOMIC
  WITH closed AS (
    UPDATE pounce.auctions AS a
    SET status = CASE WHEN a.auction_type = 'bid' AND a.bids > 0 THEN 'sold' ELSE 'ended' END,
        updated_at = now()
    WHERE a.status = 'active' AND a.end_time <= now()
    RETURNING a.id, a.domain, a.sld, a.tld, a.current_price, a.currency, a.price_usd, a.end_time,
              a.platform, a.status),
  recorded AS (
    INSERT INTO pounce.sales (domain, sld, tld, price, currency, price_usd, sold_on, venue, auction_id)
    SELECT domain, sld, tld, current_price, currency, price_usd, (end_time AT TIME ZONE 'UTC')::date,
           platform, id
    FROM closed
    WHERE status = 'sold' AND current_price > 0
    ON CONFLICT DO NOTHING
    RETURNING 1)
  SELECT count(*)::integer FROM closed;
END;
COMMENT ON FUNCTION pounce.close_ended_auctions() IS
  'Close auctions past their end time: sold (with bids, recorded in pounce.sales) or ended (pg_cron, every minute).';
