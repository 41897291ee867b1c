"""The master lists opportunities pick from: competitors (竞争对手) and loss reasons.

Everyone with ``opportunity:read`` lists them; ``sales:admin`` keeps them. An entry that
opportunities name is not deleted (it would rewrite what they say): deactivate it instead, so
that it is no longer offered.
"""

from __future__ import annotations

from typing import Any

from crm_common.application import UseCases
from crm_common.errors import Conflict, ValidationFailed
from crm_common.history import diff, filled, snapshot
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from sales.application.history import dump, record_history
from sales.models import Competitor, LossReason
from sales.repository import opportunities as rows
from sales.schemas.opportunities import (
    CompetitorInputSchema,
    CompetitorSchema,
    LossReasonChangesSchema,
    LossReasonInputSchema,
    LossReasonSchema,
    MasterListQuerySchema,
)

READ = "opportunity:read"
ADMIN = "sales:admin"
COMPETITOR_FIELDS = ("name", "strengths", "weaknesses", "main_products", "price_level", "active")
LOSS_REASON_FIELDS = ("name", "active")

DEFAULT_LOSS_REASONS = (
    ("price", "价格没有优势"),
    ("product_fit", "产品不满足需求"),
    ("relationship", "客户关系不足"),
    ("budget", "预算取消或不足"),
    ("timing", "项目延期或搁置"),
    ("no_decision", "客户未做决定"),
    ("other", "其他"),
)
"""The loss reasons a new database starts with: (code, name)."""

competitor_schema = CompetitorSchema()
loss_reason_schema = LossReasonSchema()


def _require_reader(use_cases: UseCases) -> None:
    if not use_cases.principal.can(ADMIN):
        use_cases.principal.require(READ)


class Competitors(UseCases):
    def list(self, query: Any) -> list[dict[str, Any]]:
        _require_reader(self)
        params = load(MasterListQuerySchema(), query)
        found = rows.competitors(self.session, params.get("q"), params["include_inactive"])
        return [dump(competitor_schema, competitor) for competitor in found]

    def get(self, competitor_id: Any) -> dict[str, Any]:
        _require_reader(self)
        return dump(competitor_schema, rows.get_competitor(self.session, competitor_id))

    def create(self, data: Any) -> dict[str, Any]:
        self.principal.require(ADMIN)
        values = load(CompetitorInputSchema(), data)
        self.check_name_free(values["name"], None)
        competitor = Competitor(**values)
        self.session.add(competitor)
        self.session.flush()
        record_history(
            self.context,
            "competitor",
            competitor.id,
            "created",
            new=filled(snapshot(competitor, COMPETITOR_FIELDS)),
        )
        return dump(competitor_schema, competitor)

    def update(self, competitor_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        self.principal.require(ADMIN)
        changes, expected_version = split_version(changes, expected_version)
        competitor = rows.get_competitor(self.session, competitor_id)
        check_version(competitor, expected_version)
        values = load(CompetitorInputSchema(), changes, partial=True)
        if "name" in values:
            self.check_name_free(values["name"], competitor.id)
        before = snapshot(competitor, COMPETITOR_FIELDS)
        for name, value in values.items():
            setattr(competitor, name, value)
        field_changes = diff(before, snapshot(competitor, COMPETITOR_FIELDS), COMPETITOR_FIELDS)
        if field_changes:
            competitor.updated_at = self.context.now
            self.session.flush()
            record_history(self.context, "competitor", competitor.id, "updated", field_changes)
        return dump(competitor_schema, competitor)

    def delete(self, competitor_id: Any) -> None:
        """Delete a competitor no opportunity names; one in use is a ``Conflict``."""
        self.principal.require(ADMIN)
        competitor = rows.get_competitor(self.session, competitor_id)
        if rows.competitor_in_use(self.session, competitor.id):
            raise Conflict(
                f"opportunities name {competitor.name}; deactivate it instead (active: false)",
                {"reason": "competitor_in_use"},
            )
        record_history(
            self.context,
            "competitor",
            competitor.id,
            "removed",
            old=filled(snapshot(competitor, COMPETITOR_FIELDS)),
        )
        self.session.delete(competitor)
        self.session.flush()

    def check_name_free(self, name: str, own_id: Any) -> None:
        holder = rows.competitor_named(self.session, name)
        if holder is not None and holder.id != own_id:
            raise ValidationFailed.on("name", "is the name of another competitor")


class LossReasons(UseCases):
    def list(self, query: Any) -> list[dict[str, Any]]:
        _require_reader(self)
        params = load(MasterListQuerySchema(), query)
        found = rows.loss_reasons(self.session, params.get("q"), params["include_inactive"])
        return [dump(loss_reason_schema, reason) for reason in found]

    def create(self, data: Any) -> dict[str, Any]:
        self.principal.require(ADMIN)
        values = load(LossReasonInputSchema(), data)
        if rows.find_loss_reason(self.session, values["code"]) is not None:
            raise ValidationFailed.on("code", "is the code of another loss reason")
        reason = LossReason(**{"active": True, **values})
        self.session.add(reason)
        self.session.flush()
        record_history(
            self.context,
            "loss_reason",
            reason.code,
            "created",
            new=filled(snapshot(reason, LOSS_REASON_FIELDS)),
        )
        return dump(loss_reason_schema, reason)

    def update(self, code: str, changes: Any) -> dict[str, Any]:
        self.principal.require(ADMIN)
        reason = rows.get_loss_reason(self.session, code)
        values = load(LossReasonChangesSchema(), changes)
        before = snapshot(reason, LOSS_REASON_FIELDS)
        for name in LOSS_REASON_FIELDS:
            if name in values:
                setattr(reason, name, values[name])
        field_changes = diff(before, snapshot(reason, LOSS_REASON_FIELDS), LOSS_REASON_FIELDS)
        if field_changes:
            self.session.flush()
            record_history(self.context, "loss_reason", reason.code, "updated", field_changes)
        return dump(loss_reason_schema, reason)

    def delete(self, code: str) -> None:
        """Delete a loss reason no opportunity was lost for; one in use is a ``Conflict``."""
        self.principal.require(ADMIN)
        reason = rows.get_loss_reason(self.session, code)
        if rows.loss_reason_in_use(self.session, reason.code):
            raise Conflict(
                f"opportunities were lost for {reason.name}; deactivate it instead (active: false)",
                {"reason": "loss_reason_in_use"},
            )
        record_history(
            self.context,
            "loss_reason",
            reason.code,
            "removed",
            old=filled(snapshot(reason, LOSS_REASON_FIELDS)),
        )
        self.session.delete(reason)
        self.session.flush()
