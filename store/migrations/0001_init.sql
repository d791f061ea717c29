-- Steward's first schema: audit trail, human tasks, case list, money ledger,
-- the customer signals scoring reads, and the simulated outside world.
--
-- Applied by store/migrate.py in one transaction. Never edit once applied:
-- add 0002_....sql instead.
--
-- Personal data: emails, card fingerprints, devices and addresses appear only
-- as SHA-256 hashes of their normalised form (domain.risk_rules.identity_hash).

-- ---------------------------------------------------------------------------
-- Audit trail: append-only, one row per deterministic entry id.
-- ---------------------------------------------------------------------------
CREATE TABLE audit_log (
    id           bigserial   PRIMARY KEY,
    -- Workflow id + sequence: a retried local activity hits the unique key.
    entry_id     text        NOT NULL UNIQUE,
    workflow_id  text        NOT NULL,
    process      text        NOT NULL,
    case_id      text        NOT NULL,
    actor        text        NOT NULL,
    role         text        NOT NULL,
    action       text        NOT NULL,
    reason       text        NOT NULL DEFAULT '',
    before       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    after        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- Workflow time of the event; recorded_at is when the row reached us.
    occurred_at  timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_case_idx ON audit_log (case_id, occurred_at, id);
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at);
CREATE INDEX audit_log_workflow_idx ON audit_log (workflow_id, occurred_at, id);

-- Auditors must be able to trust that nothing was rewritten: refuse UPDATE
-- and DELETE row by row, for every role including the application's own.
-- TRUNCATE is left to the table owner (test resets, retention jobs run by a
-- DBA); in production the application role is granted INSERT and SELECT only.
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- ---------------------------------------------------------------------------
-- Human tasks: the coordinator work queue (exact, unlike visibility).
-- ---------------------------------------------------------------------------
CREATE TABLE human_tasks (
    task_id         text        PRIMARY KEY,
    process         text        NOT NULL,
    case_id         text        NOT NULL,
    workflow_id     text        NOT NULL,
    kind            text        NOT NULL,
    title           text        NOT NULL,
    awaited_role    text        NOT NULL,
    assignee        text,
    due_at          timestamptz NOT NULL,
    priority        integer     NOT NULL DEFAULT 0,
    escalated       boolean     NOT NULL DEFAULT false,
    reminders_sent  integer     NOT NULL DEFAULT 0 CHECK (reminders_sent >= 0),
    opened_at       timestamptz NOT NULL DEFAULT now(),
    closed_at       timestamptz,
    closed_by       text,
    outcome         text,
    CHECK ((closed_at IS NULL) = (outcome IS NULL))
);

-- The work queue: open tasks for a role, soonest deadline first.
CREATE INDEX human_tasks_open_queue_idx
    ON human_tasks (awaited_role, due_at, priority DESC)
    WHERE closed_at IS NULL;
CREATE INDEX human_tasks_open_due_idx
    ON human_tasks (due_at, priority DESC)
    WHERE closed_at IS NULL;
CREATE INDEX human_tasks_workflow_idx ON human_tasks (workflow_id);
CREATE INDEX human_tasks_closed_idx ON human_tasks (process, closed_at) WHERE closed_at IS NOT NULL;

-- ---------------------------------------------------------------------------
-- Cases: latest status of every process instance, for lists and reports.
-- ---------------------------------------------------------------------------
CREATE TABLE cases (
    workflow_id   text        PRIMARY KEY,
    process       text        NOT NULL,
    case_id       text        NOT NULL,
    status        text        NOT NULL,
    market        text,
    risk_band     text,
    awaited_role  text,
    due_at        timestamptz,
    amount_minor  bigint      CHECK (amount_minor >= 0),
    currency      char(3),
    -- Workflow time of the first and latest status, not wall-clock insert time.
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE INDEX cases_process_status_idx ON cases (process, status, updated_at DESC);
CREATE INDEX cases_case_idx ON cases (case_id);
CREATE INDEX cases_updated_idx ON cases (updated_at DESC);

-- ---------------------------------------------------------------------------
-- Payment ledger: every money movement Steward asked for, exactly once.
-- ---------------------------------------------------------------------------
CREATE TABLE payment_ledger (
    id                  bigserial   PRIMARY KEY,
    -- workflow id + operation id: the same key the provider saw.
    idempotency_key     text        NOT NULL UNIQUE,
    workflow_id         text        NOT NULL,
    order_id            text        NOT NULL,
    kind                text        NOT NULL CHECK (kind IN ('capture', 'void', 'refund')),
    amount_minor        bigint      NOT NULL CHECK (amount_minor >= 0),
    currency            char(3)     NOT NULL,
    provider            text        NOT NULL,
    provider_reference  text        NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX payment_ledger_order_idx ON payment_ledger (order_id, id);
CREATE INDEX payment_ledger_recorded_idx ON payment_ledger (recorded_at);

-- ---------------------------------------------------------------------------
-- Customer signals read by scoring.
-- ---------------------------------------------------------------------------
CREATE TABLE orders_seen (
    order_id       text        PRIMARY KEY,
    customer_id    text        NOT NULL,
    market         text        NOT NULL,
    email_hash     text        NOT NULL,
    card_hash      text        NOT NULL,
    device_hash    text        NOT NULL,
    -- The shipping address: where the goods go is what a fraud ring reuses.
    address_hash   text        NOT NULL,
    amount_minor   bigint      NOT NULL CHECK (amount_minor >= 0),
    currency       char(3)     NOT NULL,
    placed_at      timestamptz NOT NULL,
    -- NULL while under review; accepted | declined | cancelled | completed ...
    outcome        text,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

-- Velocity: "orders with this X in the 24 h before placed_at".
CREATE INDEX orders_seen_email_idx ON orders_seen (email_hash, placed_at);
CREATE INDEX orders_seen_card_idx ON orders_seen (card_hash, placed_at);
CREATE INDEX orders_seen_device_idx ON orders_seen (device_hash, placed_at);
CREATE INDEX orders_seen_address_idx ON orders_seen (address_hash, placed_at);
CREATE INDEX orders_seen_customer_idx ON orders_seen (customer_id, placed_at);

-- Fed by order management, the chargeback and the returns processes.
CREATE TABLE customer_history (
    customer_id       text        PRIMARY KEY,
    completed_orders  integer     NOT NULL DEFAULT 0 CHECK (completed_orders >= 0),
    chargebacks       integer     NOT NULL DEFAULT 0 CHECK (chargebacks >= 0),
    returns           integer     NOT NULL DEFAULT 0 CHECK (returns >= 0),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE risk_lists (
    list        text        NOT NULL CHECK (list IN ('block', 'allow')),
    kind        text        NOT NULL
                CHECK (kind IN ('email', 'card', 'device', 'address', 'customer')),
    value_hash  text        NOT NULL,
    reason      text        NOT NULL,
    added_by    text        NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list, kind, value_hash)
);

CREATE INDEX risk_lists_hash_idx ON risk_lists (kind, value_hash);

-- Known freight-forwarder / reshipper addresses (hash of the normalised
-- address) and postal codes where forwarders cluster (tax-free US states...).
CREATE TABLE freight_forwarders (
    address_hash  text        PRIMARY KEY,
    name          text        NOT NULL,
    added_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE freight_forwarder_postal_codes (
    country      char(2)     NOT NULL,
    -- Normalised: lower case, letters and digits only (risk_rules.normalise_postal_code).
    postal_code  text        NOT NULL,
    name         text        NOT NULL,
    added_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (country, postal_code)
);

-- ---------------------------------------------------------------------------
-- The simulated outside world. A real provider, 3PL or email service keeps
-- this state on its side; the simulators keep it here so the embedded stack
-- behaves the same across restarts and several workers.
-- ---------------------------------------------------------------------------
CREATE TABLE sim_payment_authorisations (
    authorisation_ref  text        PRIMARY KEY,
    amount_minor       bigint      NOT NULL CHECK (amount_minor >= 0),
    currency           char(3)     NOT NULL,
    captured_minor     bigint      NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
    refunded_minor     bigint      NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    status             text        NOT NULL DEFAULT 'authorised'
                       CHECK (status IN ('authorised', 'captured', 'voided', 'expired')),
    authorised_at      timestamptz NOT NULL,
    expires_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (captured_minor <= amount_minor),
    CHECK (refunded_minor <= captured_minor)
);

CREATE TABLE sim_payment_operations (
    idempotency_key     text        PRIMARY KEY,
    kind                text        NOT NULL CHECK (kind IN ('capture', 'void', 'refund')),
    authorisation_ref   text        NOT NULL REFERENCES sim_payment_authorisations,
    amount_minor        bigint      NOT NULL CHECK (amount_minor >= 0),
    currency            char(3)     NOT NULL,
    provider_reference  text        NOT NULL UNIQUE,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sim_payment_operations_auth_idx ON sim_payment_operations (authorisation_ref);

CREATE TABLE sim_warehouse_releases (
    idempotency_key  text        PRIMARY KEY,
    order_id         text        NOT NULL,
    release_id       text        NOT NULL UNIQUE,
    warehouse        text        NOT NULL,
    destination      char(2)     NOT NULL,
    items            jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sim_notifications (
    message_id      text        PRIMARY KEY,
    order_id        text        NOT NULL,
    template        text        NOT NULL,
    locale          text        NOT NULL,
    recipient_hash  text        NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sim_notifications_order_idx ON sim_notifications (order_id, sent_at);
