-- =============================================================================
-- Market: DNS verification of listings, through the job queue
-- =============================================================================
-- A seller asks for a check; a collector reads the TXT records at _pounce.<domain>
-- (collectors/listing_check.py) and reports them to
-- collector.record_listing_verifications() (sql/market/listings.sql). Applied after
-- the job queue (sql/jobs/queue.sql), which this enqueues into.

-- verify_listing(listing_id): queues a DNS check of one of the caller's listings, ahead
-- of routine checks; asking again while one is pending returns the same job. Returns
-- where the record must be and what it must say.
CREATE FUNCTION api.verify_listing(listing_id bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pounce, pg_catalog, public
AS $$
DECLARE
    l pounce.listings;
    job bigint;
BEGIN
    SELECT * INTO l FROM pounce.listings AS x
    WHERE x.id = verify_listing.listing_id AND x.seller_id = pounce.current_user_id();
    IF NOT FOUND THEN
        -- another member's listing looks exactly like one that does not exist
        RAISE EXCEPTION USING ERRCODE = 'P0002', MESSAGE = format('no listing %s of yours', listing_id);
    END IF;
    IF l.verified_at IS NOT NULL THEN
        RETURN jsonb_build_object('listing_id', l.id, 'verified_at', l.verified_at, 'job_id', NULL);
    END IF;
    job := pounce.enqueue('verify_listing', jsonb_build_object('listing_id', l.id, 'domain', l.domain),
                          'listing:' || l.id, now(), -10);
    RETURN jsonb_build_object('listing_id', l.id, 'verified_at', NULL, 'job_id', job,
                              'record', '_pounce.' || l.domain, 'value', 'pounce-verify=' || l.verification_token);
END;
$$;
COMMENT ON FUNCTION api.verify_listing(bigint) IS
  'Check the DNS TXT record of one of your listings now: publish "pounce-verify=<token>" at _pounce.<domain> '
  'first (both are in /listings). Returns the queued job; the listing''s verified_at is set when the record is found.';
GRANT EXECUTE ON FUNCTION api.verify_listing(bigint) TO member;
