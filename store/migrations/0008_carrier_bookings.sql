-- What Steward bought, opened or filed through a carrier aggregator whose API
-- takes no idempotency key (EasyPost: activities/carrier_easypost.py), keyed
-- by Steward's own idempotency key. The row is written before the provider
-- call, the provider's id as soon as it is known (a shipment created but not
-- yet bought), the result once done: a retry finds the shipment and buys it
-- at most once, or answers with the recorded result.
CREATE TABLE carrier_bookings (
    idempotency_key  text        PRIMARY KEY,
    provider         text        NOT NULL,
    kind             text        NOT NULL
                     CHECK (kind IN ('label', 'return_label', 'tracker', 'claim')),
    -- shp_... / trk_... / clm_...: set as soon as the provider has created it.
    provider_ref     text,
    -- The answer a repeat returns (tracking number, label URL...); NULL until done.
    result           jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz
);
