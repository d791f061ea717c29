-- Fulfilment (issue 16): the released order Steward keeps for the warehouse
-- process, warehouse (WMS) event intake, and the simulated warehouse's
-- timeline, holds and the carrier's intercepts.

-- The order at release, without its personal values (customer, addresses,
-- IP): those live in the personal-data store, subject kind "order"
-- (store/fulfilment.py ORDER_PERSONAL_PATHS). Rescoring an address change and
-- booking the shipment at handover read it back.
CREATE TABLE fulfilment_orders (
    order_id      text        PRIMARY KEY,
    document      jsonb       NOT NULL,
    subject_id    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Every warehouse event the webhook received, once per event id: a repeat is
-- counted, not routed again; `routed` says whether a fulfilment took it.
CREATE TABLE warehouse_events (
    event_id      text        PRIMARY KEY,
    order_id      text        NOT NULL,
    kind          text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    site          text        NOT NULL DEFAULT '',
    received_at   timestamptz NOT NULL DEFAULT now(),
    deliveries    integer     NOT NULL DEFAULT 1,
    routed        boolean     NOT NULL DEFAULT false
);
CREATE INDEX warehouse_events_order ON warehouse_events (order_id, occurred_at);

-- The simulated WMS: each released order moves through the states on the
-- site's timeline (starters/fulfilment_simulator.py ticks it).
CREATE TABLE sim_wms_orders (
    order_id        text        PRIMARY KEY,
    site            text        NOT NULL,
    status          text        NOT NULL DEFAULT 'released',
    released_at     timestamptz NOT NULL,
    next_at         timestamptz NOT NULL,
    address_ref     text,
    carrier         text,
    tracking_number text,
    cancelled_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sim_wms_orders_due ON sim_wms_orders (next_at) WHERE cancelled_at IS NULL;

-- Holds the warehouse was told about, by handle: no picking while one is active.
CREATE TABLE sim_wms_holds (
    order_id      text        NOT NULL,
    handle        text        NOT NULL,
    reason        text        NOT NULL,
    active        boolean     NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, handle)
);

-- The simulated carrier's intercepts, once per idempotency key.
CREATE TABLE sim_carrier_intercepts (
    idempotency_key text        PRIMARY KEY,
    order_id        text        NOT NULL,
    outcome         text        NOT NULL,
    fee_minor       bigint      NOT NULL DEFAULT 0,
    reference       text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
