"""What every process's client helpers share: how long to wait for a
workflow to answer, and the errors the HTTP API and the CLI turn into a
status code or one clear line (404, 409, 503)."""

from __future__ import annotations

from datetime import timedelta

# A query needs a worker to replay the workflow; without one it would hang until
# the server's long default. Callers (HTTP, CLI) prefer a prompt, clear failure.
QUERY_TIMEOUT = timedelta(seconds=15)
# An update returns once the workflow has applied it; same reasoning.
UPDATE_TIMEOUT = timedelta(seconds=30)


class CaseNotFound(LookupError):
    """No workflow exists for this business key."""


class CaseClosed(RuntimeError):
    """The case has finished; it accepts no more signals or decisions."""


class CaseUnavailable(RuntimeError):
    """The case exists but could not answer (no worker polling, workflow task failing)."""


class CaseRefused(Exception):
    """A validator (or the server) refused a decision; the message names the field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
