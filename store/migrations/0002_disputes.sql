-- Chargebacks and disputes (issue 3): the dispute register, the provider
-- events we ingested, and the simulated side of the dispute providers, the
-- warehouse holds and the packing-station CCTV archive.
--
-- Never edit once applied: add a new file instead.

-- ---------------------------------------------------------------------------
-- Disputes: one row per provider dispute, written by the chargeback workflow
-- at every step. Other processes read it (store.disputes.open_dispute_for_order)
-- to freeze refunds while a dispute is open.
-- ---------------------------------------------------------------------------
CREATE TABLE disputes (
    provider       text        NOT NULL CHECK (provider IN ('stripe', 'adyen')),
    dispute_id     text        NOT NULL,
    workflow_id    text        NOT NULL UNIQUE,
    -- NULL when the provider did not name an order we know (a dispute on an
    -- order Steward never reviewed still opens a case).
    order_id       text,
    stage          text        NOT NULL
                   CHECK (stage IN ('pre_dispute', 'dispute', 'pre_arbitration')),
    status         text        NOT NULL,
    reason         text        NOT NULL,
    provider_reason_code text  NOT NULL DEFAULT '',
    -- The provider's response deadline (Stripe evidence_details.due_by, Adyen
    -- defensePeriodEndsAt); NULL when no response is allowed.
    due_by         timestamptz,
    amount_minor   bigint      NOT NULL CHECK (amount_minor >= 0),
    currency       char(3)     NOT NULL,
    payment_ref    text        NOT NULL DEFAULT '',
    -- Workflow time of the first and latest step.
    opened_at      timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    closed_at      timestamptz,
    PRIMARY KEY (provider, dispute_id)
);

CREATE INDEX disputes_order_open_idx ON disputes (order_id) WHERE closed_at IS NULL;
CREATE INDEX disputes_due_idx ON disputes (due_by) WHERE closed_at IS NULL;
CREATE INDEX disputes_status_idx ON disputes (status, updated_at DESC);

-- ---------------------------------------------------------------------------
-- Every provider event accepted at the webhook, once (dedupe key: Stripe's
-- event id; Adyen's pspReference + eventCode + success). Normalised fields
-- only: the raw bodies carry customer data.
-- ---------------------------------------------------------------------------
CREATE TABLE dispute_events (
    event_key     text        PRIMARY KEY,
    provider      text        NOT NULL,
    dispute_id    text        NOT NULL,
    event_type    text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    received_at   timestamptz NOT NULL DEFAULT now(),
    deliveries    integer     NOT NULL DEFAULT 1 CHECK (deliveries >= 1)
);

CREATE INDEX dispute_events_dispute_idx ON dispute_events (provider, dispute_id, occurred_at);

-- ---------------------------------------------------------------------------
-- Simulated dispute providers: what Stripe / Adyen keep on their side about
-- our responses. One row per (dispute, action): a submission happens once.
-- ---------------------------------------------------------------------------
CREATE TABLE sim_dispute_actions (
    provider            text        NOT NULL,
    dispute_id          text        NOT NULL,
    -- stripe: stage_evidence, submit, accept; adyen: supply_documents, defend, accept
    action              text        NOT NULL,
    idempotency_key     text        NOT NULL UNIQUE,
    provider_reference  text        NOT NULL UNIQUE,
    documents           jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, dispute_id, action)
);

-- ---------------------------------------------------------------------------
-- Simulated warehouse: holds (an early fraud warning stops an order from
-- shipping; the release itself is still accepted) and CCTV clip requests
-- answered later by the warehouse webhook.
-- ---------------------------------------------------------------------------
CREATE TABLE sim_warehouse_holds (
    order_id     text        PRIMARY KEY,
    reason       text        NOT NULL,
    source_ref   text        NOT NULL,
    held_at      timestamptz NOT NULL DEFAULT now(),
    released_at  timestamptz,
    released_by  text
);

CREATE TABLE sim_cctv_requests (
    request_id      text        PRIMARY KEY,
    order_id        text        NOT NULL,
    station         text        NOT NULL,
    footage_at      timestamptz NOT NULL,
    -- The workflow that gets the `cctv_clip_ready` signal.
    reply_to        text        NOT NULL,
    status          text        NOT NULL DEFAULT 'requested'
                    CHECK (status IN ('requested', 'delivered', 'unavailable')),
    clip_ref        text,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    answered_at     timestamptz
);

CREATE INDEX sim_cctv_requests_open_idx ON sim_cctv_requests (requested_at) WHERE status = 'requested';
