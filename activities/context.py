"""Logging context for activities: the same keys as workflows and the API."""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity

from domain.ids import case_id_from_workflow_id


def activity_logger(**extra: Any) -> Any:  # structlog's configured logger type
    """A structlog logger bound with workflow_id, case_id, activity and attempt.

    Works outside an activity too (direct calls in tests, scripts): the
    Temporal keys are then simply absent.
    """
    log = structlog.get_logger()
    try:
        info = activity.info()
    except RuntimeError:
        return log.bind(**extra)
    workflow_id = info.workflow_id
    if workflow_id:
        log = log.bind(workflow_id=workflow_id, case_id=case_id_from_workflow_id(workflow_id))
    return log.bind(activity_type=info.activity_type, attempt=info.attempt, **extra)
