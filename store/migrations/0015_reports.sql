-- Reports (issue 19): one row per report run, scheduled or by hand, with the
-- files it wrote; and the indexes the report queries need over a large
-- history (the 100k-case benchmark row in bench/reports.py).
--
-- Never edit once applied: add a new file instead.

CREATE TABLE report_runs (
    -- Temporal's run id of the ReportRunWorkflow: unique per run, the same
    -- for every attempt of its activity.
    run_id         text        PRIMARY KEY,
    workflow_id    text        NOT NULL,
    report         text        NOT NULL,
    cadence        text        NOT NULL CHECK (cadence IN ('daily', 'weekly', 'manual')),
    period_from    timestamptz NOT NULL,
    period_to      timestamptz NOT NULL,
    market         text,
    channel        text,
    status         text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    -- Attempts of the run's activity so far (a failed attempt is retried).
    attempts       integer     NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    requested_by   text        NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    finished_at    timestamptz,
    -- The last attempt's error (kept while a retry runs; cleared on success).
    error          text,
    -- [{"name": ..., "media_type": ..., "bytes": ...}] under the run's directory.
    files          jsonb       NOT NULL DEFAULT '[]'::jsonb,
    headline       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    distributed_at timestamptz,
    CHECK (period_from < period_to)
);

CREATE INDEX report_runs_started_idx ON report_runs (started_at DESC);
CREATE INDEX report_runs_report_idx ON report_runs (report, started_at DESC);

-- The reports select cases by process and creation time, tasks by opening
-- time, the audit rows of one process from a moment on, disputes by order.
CREATE INDEX cases_process_created_idx ON cases (process, created_at);
CREATE INDEX human_tasks_opened_idx ON human_tasks (opened_at);
CREATE INDEX audit_log_process_occurred_idx ON audit_log (process, occurred_at);
CREATE INDEX disputes_order_idx ON disputes (order_id);
CREATE INDEX disputes_opened_idx ON disputes (opened_at);
