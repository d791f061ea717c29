-- Payment modifications a provider answers asynchronously (issue 12): Adyen
-- answers a capture, cancel or refund with `received` and reports the outcome
-- later in a CAPTURE / CANCELLATION / REFUND notification.
--
-- The payment activity sends the modification, records it here with its
-- Temporal task token and completes asynchronously; the webhook finds the row
-- by the modification's pspReference, records the outcome (the ledger too, on
-- success) and completes the activity with that token. An outcome may arrive
-- before the activity wrote its row: the webhook then writes the row with the
-- outcome only, and the activity finds it. A later attempt of the activity
-- (its 30 s attempt timed out) finds the row by idempotency key, sends nothing
-- again and leaves its own token.
--
-- Never edit once applied: add a new file instead.

CREATE TABLE payment_modifications (
    provider           text        NOT NULL,
    -- The modification's reference at the provider (Adyen's pspReference of
    -- the capture, cancel or refund; not the payment's).
    psp_reference      text        NOT NULL,
    -- The operation waiting for the outcome. NULL until the activity wrote
    -- the row: an outcome may come first.
    idempotency_key    text        UNIQUE,
    workflow_id        text,
    order_id           text,
    kind               text        CHECK (kind IN ('capture', 'void', 'refund')),
    amount_minor       bigint      CHECK (amount_minor >= 0),
    currency           char(3),
    authorisation_ref  text,
    -- The waiting attempt's task token (each attempt replaces it).
    task_token         bytea,
    requested_at       timestamptz,
    status             text        NOT NULL DEFAULT 'pending'
                                   CHECK (status IN ('pending', 'succeeded', 'refused')),
    -- The notification that decided it: pspReference:eventCode:success.
    outcome_event      text,
    -- The provider's reason for a refusal.
    outcome_reason     text        NOT NULL DEFAULT '',
    settled_at         timestamptz,
    PRIMARY KEY (provider, psp_reference)
);

CREATE INDEX payment_modifications_pending_idx
    ON payment_modifications (requested_at) WHERE status = 'pending';
