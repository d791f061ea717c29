"""Order scoring: load the signals, apply the versioned rule set."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from temporalio import activity

from activities.context import activity_logger
from activities.ports import AuthorisationMirror
from domain.risk import SCORE_ORDER, RiskAssessment, ScoreOrderInput
from domain.risk_rules import assess, order_fingerprints
from store import order_subjects, signals


class ScoringActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        authorisation_mirrors: Mapping[str, AuthorisationMirror] | None = None,
    ) -> None:
        self.pool = pool
        # Simulation only (by provider name): with a real provider the
        # authorisation already exists on its side and this stays empty.
        self.authorisation_mirrors = dict(authorisation_mirrors or {})

    @activity.defn(name=SCORE_ORDER)
    async def score_order(self, input: ScoreOrderInput) -> RiskAssessment:
        """Record the order for velocity, load its signals and assess it.

        The rules judge the order as of its `placed_at`, not the activity's
        wall clock: the velocity window and the account age are measured at
        the moment the customer ordered, so a retry, a backlog after an outage
        or a re-score next week gives the same assessment for the same facts.
        (History, chargebacks and lists are read as they are now: that is news
        the reviewer wants.)
        """
        order = input.order
        if input.subject_id is not None:
            # Issue 21: the workflow holds the order pseudonymised; its
            # personal values come from the personal-data store (one query).
            order = await order_subjects.load_order(self.pool, order, input.subject_id)
        log = activity_logger(order_id=order.order_id, market=order.market)
        fingerprints = order_fingerprints(order)
        first_time, found = await signals.record_and_load_signals(self.pool, order, fingerprints)
        assessment = assess(order, found, now=order.placed_at)

        mirror = self.authorisation_mirrors.get(order.payment.provider)
        if mirror is not None:
            await mirror.register_authorisation(
                authorisation_ref=order.payment.authorisation_ref,
                amount_minor=order.payment.amount_minor,
                currency=order.payment.currency,
                authorised_at=order.payment.authorised_at,
                expires_at=order.payment.authorisation_expires_at,
            )
        log.info(
            "order_scored",
            score=assessment.score,
            band=assessment.band.value,
            routing=assessment.routing.value,
            reason_codes=[c.value for c in assessment.reason_codes],
            rule_set_version=assessment.rule_set_version,
            first_time=first_time,
        )
        return assessment
