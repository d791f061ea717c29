-- The operations desk (issue 17): the register of ops requests (the work
-- queue's order, the list filters and the CSV export read it; the workflow
-- writes it after each step, a later step never overwritten by an earlier
-- retry), and the simulated chat platform's messages and modals (`make up`
-- and the tests; production posts to Slack).
--
-- No free text from people here: the requester's description is a
-- personal-data subject (store/personal_data.py), escalation notes stay in
-- the workflow and the chat.
--
-- Never edit once applied: add a new file instead.

CREATE TABLE ops_requests (
    request_id                  text        PRIMARY KEY,
    workflow_id                 text        NOT NULL UNIQUE,
    type                        text        NOT NULL,
    priority                    text        NOT NULL,
    -- Higher first in the work queue (urgent 300 ... low 0).
    priority_rank               integer     NOT NULL,
    status                      text        NOT NULL,
    requester                   text        NOT NULL,
    channel                     text        NOT NULL,
    market                      text        NOT NULL,
    site_id                     text,
    order_id                    text,
    assignee                    text,
    awaited_role                text,
    opened_at                   timestamptz NOT NULL,
    -- Due in business time of the request's calendar (then stored as an instant).
    due_at                      timestamptz,
    first_response_at           timestamptz,
    resolved_at                 timestamptz,
    business_seconds_to_resolve integer     CHECK (business_seconds_to_resolve >= 0),
    sla_met                     boolean,
    escalated                   boolean     NOT NULL DEFAULT false,
    escalations                 integer     NOT NULL DEFAULT 0 CHECK (escalations >= 0),
    outcome                     text,
    root_cause                  text,
    linked_cases                jsonb       NOT NULL DEFAULT '[]'::jsonb,
    -- Workflow time of the step that wrote the row.
    updated_at                  timestamptz NOT NULL
);

CREATE INDEX ops_requests_queue_idx
    ON ops_requests (priority_rank DESC, due_at) WHERE status <> 'resolved';
CREATE INDEX ops_requests_assignee_idx
    ON ops_requests (assignee) WHERE status <> 'resolved';
CREATE INDEX ops_requests_opened_idx ON ops_requests (opened_at DESC);

CREATE TABLE sim_chat_messages (
    -- The workflow's message id: a retried post is posted once.
    message_id  text        PRIMARY KEY,
    channel     text        NOT NULL,
    thread_ts   text,
    ts          text        NOT NULL UNIQUE,
    text        text        NOT NULL,
    posted_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX sim_chat_messages_thread_idx ON sim_chat_messages (channel, thread_ts, posted_at);

CREATE TABLE sim_chat_views (
    trigger_id  text        PRIMARY KEY,
    view        jsonb       NOT NULL,
    opened_at   timestamptz NOT NULL DEFAULT now()
);
