-- What a payment provider reports after a modification's first outcome
-- (issue 12): Adyen's CAPTURE_FAILED and REFUND_FAILED (a capture or refund
-- reported successful failed after all), REFUNDED_REVERSED (the refunded money
-- came back to the merchant), a notified amount that is not the amount
-- Steward asked for, and a capture confirmed after its process gave up.
--
-- Never edit once applied: add a new file instead.

-- Each such event once (Adyen and Stripe redeliver): what Steward did with it.
CREATE TABLE payment_outcome_events (
    provider        text        NOT NULL,
    -- The provider's dedupe key (Adyen: pspReference:eventCode:success).
    event_key       text        NOT NULL,
    -- The modification the event is about.
    psp_reference   text        NOT NULL,
    event_code      text        NOT NULL,
    workflow_id     text,
    order_id        text,
    -- What Steward did: capture_reversed, refund_reversed, amount_mismatch...
    effect          text        NOT NULL,
    detail          text        NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_key)
);

CREATE INDEX payment_outcome_events_order_idx ON payment_outcome_events (order_id);

-- A ledger movement the provider undid after confirming it: the ledger row
-- stays (it was confirmed, and its key must never be reused), and the order's
-- totals leave it out. One reversal per row.
CREATE TABLE payment_ledger_reversals (
    idempotency_key text        PRIMARY KEY REFERENCES payment_ledger (idempotency_key),
    -- capture_failed, refund_failed, refunded_reversed.
    reason          text        NOT NULL,
    provider        text        NOT NULL,
    event_key       text        NOT NULL,
    reversed_at     timestamptz NOT NULL DEFAULT now()
);

-- The amount an outcome notified when it came before the operation recorded
-- the modification (kept for it): the operation compares it with the amount
-- it requested (in the provider's minor units).
ALTER TABLE payment_modifications
    ADD COLUMN notified_value    bigint,
    ADD COLUMN notified_currency text;
