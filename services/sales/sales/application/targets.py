"""Sales targets (销售目标) per person or department, per month or quarter: set, changed and
removed by holders of ``sales:admin``, read by them and by holders of ``forecast:read`` within
their data scope (see ``sales.repository.targets``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, true

from crm_common.errors import Conflict, ValidationFailed
from crm_common.history import FieldChange, filled
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from sales.application.activities import SalesUseCases
from sales.application.history import dump
from sales.domain.money import Money
from sales.domain.targets import check_subject_type, parse_period
from sales.models import SalesTarget
from sales.repository import targets as rows
from sales.schemas.targets import (
    TargetInputSchema,
    TargetQuerySchema,
    TargetSchema,
    TargetUpdateSchema,
)

ADMIN = "sales:admin"
FORECAST = "forecast:read"
TARGET_FIELDS = ("subject_type", "subject_id", "period", "amount", "currency")

target_schema = TargetSchema()


class Targets(SalesUseCases):
    def visible(self) -> ColumnElement[bool]:
        """Every target for ``sales:admin``, else those in the caller's data scope."""
        return true() if self.principal.can(ADMIN) else rows.visible_targets(self.principal)

    def require_read(self) -> None:
        if not self.principal.can(ADMIN):
            self.principal.require(FORECAST)

    def dumped(self, targets: Sequence[SalesTarget]) -> list[dict[str, Any]]:
        names: dict[tuple[str, str], str] = {}
        for subject_type in {t.subject_type for t in targets}:
            ids = [t.subject_id for t in targets if t.subject_type == subject_type]
            for subject_id, name in rows.subject_names(self.session, subject_type, ids).items():
                names[(subject_type, subject_id)] = name
        found = []
        for target in targets:
            dumped = dump(target_schema, target)
            dumped["subject_name"] = names.get((target.subject_type, target.subject_id))
            found.append(dumped)
        return found

    def create(self, data: Any) -> dict[str, Any]:
        self.principal.require(ADMIN)
        values = load(TargetInputSchema(), data)
        subject_type = check_subject_type(values["subject_type"])
        period = str(parse_period(values["period"]))
        money = Money.parse(values["amount"])
        if not rows.subject_exists(self.session, subject_type, values["subject_id"]):
            raise ValidationFailed.on("subject_id", f"is not a known {subject_type}")
        taken = rows.find_target(self.session, subject_type, values["subject_id"], period)
        if taken is not None:
            raise Conflict(
                f"the {subject_type} already has a target for {period}: change that one",
                {"reason": "target_exists", "id": str(taken.id)},
            )
        target = SalesTarget(
            subject_type=subject_type.value,
            subject_id=values["subject_id"],
            period=period,
            amount=money.amount,
            currency=money.currency,
        )
        self.session.add(target)
        self.session.flush()
        [dumped] = self.dumped([target])
        self.record_history("target", target.id, "created", new=filled(dumped, TARGET_FIELDS))
        return dumped

    def get(self, target_id: Any) -> dict[str, Any]:
        self.require_read()
        [dumped] = self.dumped([rows.get_target(self.session, target_id, self.visible())])
        return dumped

    def update(self, target_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        """Change a target's amount."""
        self.principal.require(ADMIN)
        target = rows.get_target(self.session, target_id, true())
        changes, version = split_version(changes, expected_version)
        check_version(target, version)
        values = load(TargetUpdateSchema(), changes)
        money = Money.parse(values["amount"], target.currency)
        if money.amount != target.amount:
            old = target.amount
            target.amount = money.amount
            target.updated_at = self.context.now
            self.session.flush()
            self.record_history(
                "target", target.id, "updated", [FieldChange("amount", str(old), str(money.amount))]
            )
        [dumped] = self.dumped([target])
        return dumped

    def delete(self, target_id: Any) -> None:
        self.principal.require(ADMIN)
        target = rows.get_target(self.session, target_id, true())
        [dumped] = self.dumped([target])
        self.session.delete(target)
        self.session.flush()
        self.record_history("target", target.id, "deleted", new=filled(dumped, TARGET_FIELDS))

    def list(self, query: Any) -> dict[str, Any]:
        self.require_read()
        params = load(TargetQuerySchema(), query)
        periods = [str(parse_period(p)) for p in params.get("period") or []]
        subject_id = params.get("subject_id")
        found = rows.list_targets(
            self.session,
            self.visible(),
            subject_type=params.get("subject_type"),
            subject_ids=[subject_id] if subject_id else None,
            periods=periods or None,
            year=params.get("year"),
        )
        return {"items": self.dumped(found)}
