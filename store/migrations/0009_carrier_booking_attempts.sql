-- When the last attempt of a carrier booking began (store/carrier_bookings.py
-- claim_attempt): an attempt whose activity timed out may still be waiting on
-- the provider in its thread, so the next one waits until the lease is over
-- instead of creating and buying a second label or filing a second claim.
ALTER TABLE carrier_bookings ADD COLUMN attempt_at timestamptz;
