-- Returns (workflows/returns.py): the quantities each return takes back, and
-- the simulated carrier labels, warehouse dispositions and stock behind the
-- carrier and warehouse ports.

-- ---------------------------------------------------------------------------
-- Return lines: what each RMA takes back, so a second return of the same
-- order can only ask for what is left. Rows are written once by the
-- eligibility activity (retries hit the primary key); whether a return still
-- counts is read from its case status (rejected, cancelled and expired
-- returns give their quantities back).
-- ---------------------------------------------------------------------------
CREATE TABLE return_lines (
    rma_id       text        NOT NULL,
    workflow_id  text        NOT NULL,
    order_id     text        NOT NULL,
    sku          text        NOT NULL,
    quantity     integer     NOT NULL CHECK (quantity > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rma_id, sku)
);

CREATE INDEX return_lines_order_idx ON return_lines (order_id, sku);

-- ---------------------------------------------------------------------------
-- Simulated outside world for returns.
-- ---------------------------------------------------------------------------
CREATE TABLE sim_return_labels (
    idempotency_key  text        PRIMARY KEY,
    rma_id           text        NOT NULL,
    carrier          text        NOT NULL,
    tracking_number  text        NOT NULL UNIQUE,
    label_url        text        NOT NULL,
    expires_at       timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sim_return_dispositions (
    idempotency_key  text        PRIMARY KEY,
    rma_id           text        NOT NULL,
    order_id         text        NOT NULL,
    disposition      text        NOT NULL
                     CHECK (disposition IN ('restock', 'quarantine', 'return_to_customer',
                                            'repair')),
    warehouse        text        NOT NULL,
    reference        text        NOT NULL UNIQUE,
    items            jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Stock the simulated warehouse reports; a SKU without a row is in stock.
CREATE TABLE sim_stock (
    sku        text        PRIMARY KEY,
    available  integer     NOT NULL CHECK (available >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
