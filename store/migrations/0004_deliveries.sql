-- Failed deliveries and carrier claims (issue 5): the shipments Steward
-- follows, the carrier events it ingested, the claims ledger, and the
-- simulated carrier and warehouse returns desk.
--
-- Never edit once applied: add a new file instead.

-- A failed delivery's case id is its shipment id; the order id beside it lets
-- `steward audit ORDER_ID` print the whole path of an order across processes.
-- Nullable: rows written before this column, and processes keyed by order id.
ALTER TABLE audit_log ADD COLUMN order_id text;
CREATE INDEX audit_log_order_idx ON audit_log (order_id, occurred_at, id)
    WHERE order_id IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Shipments: registered when the warehouse hands a parcel to the carrier, and
-- by every reship. `record` is the ShipmentRecord (with the order) a failed
-- delivery or a claim starts from.
-- ---------------------------------------------------------------------------
CREATE TABLE shipments (
    shipment_id          text        PRIMARY KEY,
    carrier              text        NOT NULL,
    tracking_number      text        NOT NULL,
    order_id             text        NOT NULL,
    attempt              integer     NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    expected_delivery_at timestamptz NOT NULL,
    record               jsonb       NOT NULL,
    -- Latest tracking status and the carrier time of the event that set it:
    -- an older event arriving late never moves the status back.
    status               text        NOT NULL DEFAULT 'in_transit',
    last_event_at        timestamptz,
    -- The process following this parcel (a failed delivery, its reship, a
    -- claim); its events go there instead of opening a new case.
    tracked_by           text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (carrier, tracking_number)
);

CREATE INDEX shipments_order_idx ON shipments (order_id);
CREATE INDEX shipments_silent_idx ON shipments (expected_delivery_at)
    WHERE status NOT IN ('delivered', 'lost', 'damaged', 'returned_to_sender')
      AND tracked_by IS NULL;

-- ---------------------------------------------------------------------------
-- Carrier events, one row per (source, event id): a repeat changes nothing.
-- routed_at stays NULL until the event reached its process, so a repeat of an
-- event whose routing failed (Temporal down) is routed again.
-- ---------------------------------------------------------------------------
CREATE TABLE carrier_events (
    source           text        NOT NULL,
    event_id         text        NOT NULL,
    carrier          text        NOT NULL,
    tracking_number  text        NOT NULL,
    shipment_id      text,
    status           text        NOT NULL,
    exception_code   text,
    occurred_at      timestamptz NOT NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    routed_to        text,
    routed_at        timestamptz,
    PRIMARY KEY (source, event_id)
);

CREATE INDEX carrier_events_tracking_idx ON carrier_events (carrier, tracking_number, occurred_at);

-- ---------------------------------------------------------------------------
-- Claims ledger: the outcome and reimbursement of every carrier claim,
-- exactly once per claim (idempotency key = workflow id + "/outcome").
-- Kept apart from payment_ledger: carrier money is not a card movement and
-- must not change what an order may still refund.
-- ---------------------------------------------------------------------------
CREATE TABLE carrier_claim_ledger (
    id               bigserial   PRIMARY KEY,
    idempotency_key  text        NOT NULL UNIQUE,
    workflow_id      text        NOT NULL,
    carrier          text        NOT NULL,
    tracking_number  text        NOT NULL,
    order_id         text        NOT NULL,
    claim_reference  text        NOT NULL,
    outcome          text        NOT NULL CHECK (outcome IN ('approved', 'rejected', 'no_response')),
    amount_minor     bigint      NOT NULL CHECK (amount_minor >= 0),
    currency         char(3)     NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX carrier_claim_ledger_order_idx ON carrier_claim_ledger (order_id);

-- ---------------------------------------------------------------------------
-- Simulated carrier: labels, investigations and claims, idempotent by key.
-- ---------------------------------------------------------------------------
CREATE TABLE sim_carrier_operations (
    idempotency_key  text        PRIMARY KEY,
    kind             text        NOT NULL,
    carrier          text        NOT NULL,
    reference        text        NOT NULL,
    payload          jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Simulated warehouse returns desk: inspections and restocks, idempotent by key.
CREATE TABLE sim_returns_desk (
    idempotency_key  text        PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN ('inspection', 'restock')),
    shipment_id      text        NOT NULL,
    result           text        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
