-- Refunds between the order's refund lock and the provider's answer (issue 13).
--
-- The refund activity no longer holds a connection (and a transaction) while
-- the provider works: it checks the refund rule and writes this row in one
-- short transaction under the order's lock, calls the provider with no
-- connection held, then writes the ledger row and deletes this one in a
-- second. The rule counts the rows here of other operations as refunded, so
-- two different refunds still cannot both take the last money; a second
-- attempt of the same operation finds its own row and goes on to the
-- provider with the same idempotency key (same reference, one ledger row).
--
-- A row stays when the outcome is unknown (a timeout, a killed worker): the
-- next attempt finishes it. A row older than its refund's workflow means
-- nobody will: ask the provider by the idempotency key.
--
-- Never edit once applied: add a new file instead.

CREATE TABLE refunds_in_flight (
    -- workflow id + operation id: the key the provider sees and the ledger keeps.
    idempotency_key  text        PRIMARY KEY,
    workflow_id      text        NOT NULL,
    order_id         text        NOT NULL,
    amount_minor     bigint      NOT NULL CHECK (amount_minor >= 0),
    currency         char(3)     NOT NULL,
    provider         text        NOT NULL,
    started_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refunds_in_flight_order_idx ON refunds_in_flight (order_id);
