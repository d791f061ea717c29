-- Issue 15: outcomes written back by the step that decides them
-- (store/outcomes.py, domain/outcomes.py). One row per write key: the counters
-- below move only when the row is new, so a retried step write counts once.
CREATE TABLE order_outcomes (
    write_key     text        PRIMARY KEY,
    order_id      text        NOT NULL,
    -- From orders_seen when the write happened; NULL for an order Steward
    -- never reviewed (nothing to count it against).
    customer_id   text,
    outcome       text        NOT NULL,
    process       text        NOT NULL,
    amount_minor  bigint      NOT NULL DEFAULT 0 CHECK (amount_minor >= 0),
    currency      char(3),
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX order_outcomes_order_idx ON order_outcomes (order_id, occurred_at);

-- The latest outcome's rank (domain/outcomes.py OUTCOME_EFFECTS) and time: a
-- later stage (returned, charged back) is never overwritten by an earlier one.
ALTER TABLE orders_seen
    ADD COLUMN outcome_rank smallint,
    ADD COLUMN outcome_at   timestamptz,
    -- The payment checks at authorisation, recorded by scoring: a fraud
    -- dispute's evidence (activities/disputes.py) quotes them. NULL for
    -- orders scored before issue 15.
    ADD COLUMN avs_result   text,
    ADD COLUMN cvv_result   text,
    ADD COLUMN three_ds     text;

-- `chargebacks` stays the total the risk rule reads (won + lost).
ALTER TABLE customer_history
    ADD COLUMN chargebacks_won   integer NOT NULL DEFAULT 0 CHECK (chargebacks_won >= 0),
    ADD COLUMN chargebacks_lost  integer NOT NULL DEFAULT 0 CHECK (chargebacks_lost >= 0),
    ADD COLUMN fraud_declines    integer NOT NULL DEFAULT 0 CHECK (fraud_declines >= 0),
    ADD COLUMN failed_deliveries integer NOT NULL DEFAULT 0 CHECK (failed_deliveries >= 0);

-- Returned value per customer and currency (amounts of different currencies
-- never add up).
CREATE TABLE customer_returned_value (
    customer_id   text    NOT NULL,
    currency      char(3) NOT NULL,
    amount_minor  bigint  NOT NULL DEFAULT 0 CHECK (amount_minor >= 0),
    PRIMARY KEY (customer_id, currency)
);
