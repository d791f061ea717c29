-- Issue 21: the identity hashes scoring keeps (orders_seen's email and
-- shipping-address hashes, risk_lists entries, the simulated notifier's
-- recipient hash) are erased with the person: a privacy request's erasure
-- sets them to NULL (orders_seen, sim_notifications) or deletes the list
-- entry (store/identity_erasure.py). NULL never equals a hash, so an erased
-- order no longer counts in anyone's velocity or email-per-card figures;
-- its amounts, market, card and device hashes and outcome stay.
ALTER TABLE orders_seen
    ALTER COLUMN email_hash DROP NOT NULL,
    ALTER COLUMN address_hash DROP NOT NULL,
    ADD COLUMN identity_erased_at timestamptz;

ALTER TABLE sim_notifications
    ALTER COLUMN recipient_hash DROP NOT NULL;
