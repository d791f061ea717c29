-- Employee special sales (issue 18): campaign process `campaign:{campaign_id}`.
--
-- The campaign row is the quota gate the order endpoint reads: its state and
-- window (UTC instants computed from the campaign's local times and timezone)
-- decide whether an employee order may take quota right now. The workflow
-- writes the state (scheduled, open, closed, cancelled) and the window (early
-- close, extension); the API writes the rest when the campaign is created.
CREATE TABLE campaigns (
    campaign_id          text        PRIMARY KEY,
    workflow_id          text        NOT NULL,
    name                 text        NOT NULL,
    state                text        NOT NULL DEFAULT 'draft'
        CHECK (state IN ('draft', 'scheduled', 'open', 'closed', 'cancelled')),
    timezone             text        NOT NULL,
    opens_at             timestamptz NOT NULL,
    closes_at            timestamptz NOT NULL,
    legal_entities       text[]      NOT NULL,
    currency             char(3)     NOT NULL,
    quota_back_on_return boolean     NOT NULL,
    parameters           jsonb       NOT NULL,
    prepared_by          text        NOT NULL,
    -- sha256 of the imported roster's canonical rows; NULL before any import.
    roster_hash          text,
    roster_rows          integer     NOT NULL DEFAULT 0,
    roster_report        jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (opens_at < closes_at)
);

CREATE INDEX campaigns_window_idx ON campaigns USING gin (legal_entities);

-- Quotas per grade, copied from the parameters at creation.
CREATE TABLE campaign_quotas (
    campaign_id       text    NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    grade             text    NOT NULL,
    max_units         integer NOT NULL CHECK (max_units >= 0),
    max_amount_minor  bigint  NOT NULL CHECK (max_amount_minor >= 0),
    PRIMARY KEY (campaign_id, grade)
);

-- Stock allocated to the sale per SKU; `remaining` only moves through a
-- conditional UPDATE (remaining >= n), so it never goes below zero.
CREATE TABLE campaign_stock (
    campaign_id       text    NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    sku               text    NOT NULL,
    name              text    NOT NULL,
    category          text    NOT NULL,
    sale_price_minor  bigint  NOT NULL CHECK (sale_price_minor >= 0),
    allocated         integer NOT NULL CHECK (allocated >= 0),
    remaining         integer NOT NULL CHECK (remaining >= 0 AND remaining <= allocated),
    PRIMARY KEY (campaign_id, sku)
);

-- The HR roster, never in Temporal. The personal fields (name, work email)
-- are one personal-data subject per employee (store/personal_data.py, kind
-- `employee`); here only its id and a keyed fingerprint of the email, for
-- duplicate checks.
CREATE TABLE campaign_roster (
    campaign_id        text    NOT NULL REFERENCES campaigns ON DELETE CASCADE,
    employee_id        text    NOT NULL,
    line_number        integer NOT NULL,
    legal_entity       text    NOT NULL,
    country            char(2) NOT NULL,
    grade              text    NOT NULL,
    start_date         date    NOT NULL,
    leave_date         date,
    eligible           boolean NOT NULL,
    ineligible_reason  text,
    subject_id         text    NOT NULL,
    email_fingerprint  text    NOT NULL,
    units_taken        integer NOT NULL DEFAULT 0 CHECK (units_taken >= 0),
    amount_taken_minor bigint  NOT NULL DEFAULT 0 CHECK (amount_taken_minor >= 0),
    PRIMARY KEY (campaign_id, employee_id),
    UNIQUE (campaign_id, email_fingerprint)
);

-- Accepted employee orders: one row per order id, so a repeated order id
-- takes the quota once.
CREATE TABLE campaign_orders (
    order_id       text        PRIMARY KEY,
    campaign_id    text        NOT NULL REFERENCES campaigns,
    employee_id    text        NOT NULL,
    units          integer     NOT NULL CHECK (units > 0),
    amount_minor   bigint      NOT NULL CHECK (amount_minor >= 0),
    currency       char(3)     NOT NULL,
    accepted_at    timestamptz NOT NULL DEFAULT now(),
    -- The payload's fingerprint: the same order id with other lines is refused.
    fingerprint    text        NOT NULL
);

CREATE INDEX campaign_orders_campaign_idx ON campaign_orders (campaign_id, accepted_at);

CREATE TABLE campaign_order_lines (
    order_id          text    NOT NULL REFERENCES campaign_orders ON DELETE CASCADE,
    sku               text    NOT NULL,
    quantity          integer NOT NULL CHECK (quantity > 0),
    unit_price_minor  bigint  NOT NULL CHECK (unit_price_minor >= 0),
    released          integer NOT NULL DEFAULT 0 CHECK (released >= 0 AND released <= quantity),
    PRIMARY KEY (order_id, sku)
);

-- Quota given back for a cancelled or returned item, once per release id.
CREATE TABLE campaign_quota_releases (
    release_id   text        PRIMARY KEY,
    order_id     text        NOT NULL,
    sku          text        NOT NULL,
    quantity     integer     NOT NULL CHECK (quantity > 0),
    reason       text        NOT NULL CHECK (reason IN ('cancelled', 'returned')),
    quota_back   boolean     NOT NULL,
    released_at  timestamptz NOT NULL DEFAULT now()
);

-- Gift requests and after-sales dossiers of collaborators. The description is
-- the employee's own text: a personal-data subject (kind `message`).
CREATE TABLE campaign_requests (
    request_id   text        PRIMARY KEY,
    campaign_id  text        NOT NULL REFERENCES campaigns,
    employee_id  text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('gift', 'after_sales')),
    subject_id   text        NOT NULL,
    opened_by    text        NOT NULL,
    opened_at    timestamptz NOT NULL DEFAULT now()
);

-- The historical database: one row of figures per reconciled campaign.
CREATE TABLE campaign_figures (
    campaign_id  text        PRIMARY KEY REFERENCES campaigns,
    closed_at    timestamptz NOT NULL,
    figures      jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- The payroll/finance export of a clean reconciliation.
CREATE TABLE campaign_exports (
    campaign_id  text        PRIMARY KEY REFERENCES campaigns,
    csv          text        NOT NULL,
    rows         integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Simulated outside world: the product catalogue the sale's SKUs must be
-- complete in (description, visuals, category).
CREATE TABLE sim_catalogue (
    sku          text    PRIMARY KEY,
    description  text    NOT NULL DEFAULT '',
    visuals      integer NOT NULL DEFAULT 0 CHECK (visuals >= 0),
    category     text
);
