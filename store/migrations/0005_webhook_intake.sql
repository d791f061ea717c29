-- Provider webhooks as the providers send them (issue 12): the payment
-- references a dispute is resolved to its order by, and the authentic events
-- Steward acknowledged without acting on them.
--
-- Never edit once applied: add a new file instead.

-- ---------------------------------------------------------------------------
-- Payment references: which order a provider's payment id belongs to. A
-- Stripe dispute names its charge and PaymentIntent by id only (its metadata
-- is empty), an Adyen one the payment's pspReference (originalReference).
-- Written when scoring records the order (the authorisation reference); the
-- ledger's provider references (captures, voids, refunds) are read beside it.
-- ---------------------------------------------------------------------------
CREATE TABLE payment_references (
    reference    text        PRIMARY KEY,
    order_id     text        NOT NULL,
    -- The payment provider the order named ('simulated', 'stripe', 'adyen').
    provider     text        NOT NULL,
    -- authorisation (the order's authorisation / PaymentIntent / pspReference),
    -- or another id the provider gave for the same payment (a charge id).
    kind         text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_references_order_idx ON payment_references (order_id);

-- A dispute naming a capture's or refund's reference finds the order too.
CREATE INDEX payment_ledger_reference_idx ON payment_ledger (provider_reference);

-- ---------------------------------------------------------------------------
-- Authentic (signature-valid) provider events Steward acknowledged (2xx,
-- `[accepted]`) and did not act on, with their type and why: an auditor can
-- list what the providers sent that changed nothing. Normalised fields only
-- (no raw bodies: they carry customer data). Dedupe key as dispute_events.
-- ---------------------------------------------------------------------------
CREATE TABLE ignored_webhook_events (
    provider          text        NOT NULL,
    event_key         text        NOT NULL,
    event_type        text        NOT NULL,
    -- Stripe data.object.id, Adyen pspReference.
    object_ref        text        NOT NULL DEFAULT '',
    reason            text        NOT NULL,
    occurred_at       timestamptz,
    received_at       timestamptz NOT NULL DEFAULT now(),
    last_received_at  timestamptz NOT NULL DEFAULT now(),
    deliveries        integer     NOT NULL DEFAULT 1 CHECK (deliveries >= 1),
    PRIMARY KEY (provider, event_key)
);

CREATE INDEX ignored_webhook_events_received_idx ON ignored_webhook_events (received_at DESC);
CREATE INDEX ignored_webhook_events_type_idx ON ignored_webhook_events (provider, event_type);
