"""The forecast (销售预测), for holders of ``forecast:read``: the weighted pipeline by owner,
department, month of expected close or stage; won amount against targets (attainment); the
funnel of a period with the conversion between consecutive stages; average days per stage;
win rates by owner or department, and losses by reason.

Every figure is grouped and summed in SQL over the opportunities the caller may see, filtered
by the opportunity list's own scope condition, so that a list of opportunities adds up to the
forecast exactly. Dates are days in China (``BUSINESS_TZ``), ranges include both ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from crm_common.ids import BUSINESS_TZ
from crm_common.schemas import load
from sales.application.activities import SalesUseCases
from sales.application.targets import Targets
from sales.domain import forecast as rules
from sales.domain.money import DEFAULT_CURRENCY, format_amount
from sales.domain.processes import Outcome
from sales.domain.targets import SubjectType, parse_period, target_for
from sales.repository import activities as activity_rows
from sales.repository import forecast as rows
from sales.repository import opportunities as opportunity_rows
from sales.repository import read_models
from sales.repository import targets as target_rows
from sales.schemas.forecast import (
    AttainmentQuerySchema,
    FunnelQuerySchema,
    PipelineQuerySchema,
    StageDurationQuerySchema,
    WinRateQuerySchema,
)

READ = "forecast:read"
SECONDS_PER_DAY = 86_400


def midnight(day: date) -> datetime:
    """Midnight at the start of ``day`` in China, in UTC (as timestamps are stored)."""
    return datetime.combine(day, time(), BUSINESS_TZ).astimezone(UTC)


def day_start(day: date | None) -> datetime | None:
    return None if day is None else midnight(day)


def day_after(day: date | None) -> datetime | None:
    """Midnight at the end of ``day`` in China: ranges include their last day."""
    return None if day is None else midnight(day + timedelta(days=1))


def text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def ordered(keys: Iterable[str | None], order: dict[str, int]) -> list[str | None]:
    """Keys in ``order`` first (by rank), the others sorted, None last."""
    return sorted(
        set(keys),
        key=lambda k: (k is None, order.get(k, len(order)) if k is not None else 0, k or ""),
    )


class Forecast(SalesUseCases):
    def filters(self, params: dict[str, Any], process_code: str | None = None) -> rows.Filters:
        """The caller's scope and the query's owner, department and process."""
        departments: set[str] | None = None
        if params.get("department_id"):
            department_id = params["department_id"]
            departments = (
                activity_rows.departments_under(self.session, department_id)
                if params.get("include_sub_departments")
                else {department_id}
            )
        process_ids: set[uuid.UUID] | None = None
        if process_code is not None:
            process_ids = rows.revision_ids(self.session, process_code)
        return rows.Filters(
            visible=opportunity_rows.visible_opportunities(self.principal),
            owner_id=params.get("owner_id"),
            department_ids=departments,
            process_ids=process_ids,
        )

    def names(self, group_by: str, keys: Iterable[str | None]) -> dict[str, str]:
        if group_by == "owner":
            return {u: p.name for u, p in rows.people_by_user(self.session, keys).items()}
        if group_by == "department":
            return rows.department_names(self.session, keys)
        if group_by == "stage":
            return {code: name for code, (_, name) in rows.stage_order(self.session).items()}
        return {}

    # -- weighted pipeline -------------------------------------------------------------------
    def pipeline(self, query: Any) -> dict[str, Any]:
        """Count, amount and weighted amount of the open opportunities per group and
        currency, and per currency over all groups."""
        self.principal.require(READ)
        params = load(PipelineQuerySchema(), query)
        group_by: str = params["group_by"]
        found = rows.pipeline(
            self.session,
            self.filters(params, params.get("process_code")),
            group_by,
            params.get("start"),
            params.get("end"),
        )
        order: dict[str, int] = {}
        if group_by == "stage":
            positions = rows.stage_order(self.session)
            ranked = sorted(positions, key=lambda code: positions[code])
            order = {code: rank for rank, code in enumerate(ranked)}
        names = self.names(group_by, (key for key, *_ in found))
        by_key = {
            (key, currency): (n, amount, weighted) for key, currency, n, amount, weighted in found
        }
        groups = []
        totals: dict[str, list[Any]] = {}
        for key in ordered((key for key, _ in by_key), order):
            for currency in sorted(c for k, c in by_key if k == key):
                count, amount, weighted = by_key[(key, currency)]
                group = rules.PipelineGroup(key, currency, count, amount, weighted)
                groups.append(
                    {
                        "key": group.key,
                        "name": names.get(key or ""),
                        "currency": group.currency,
                        "count": group.count,
                        "amount": format_amount(group.amount),
                        "weighted": format_amount(group.weighted),
                    }
                )
                total = totals.setdefault(currency, [0, Decimal(0), Decimal(0)])
                total[0] += count
                total[1] += amount
                total[2] += weighted
        return {
            "group_by": group_by,
            "groups": groups,
            "totals": [
                {
                    "currency": currency,
                    "count": count,
                    "amount": format_amount(amount),
                    "weighted": format_amount(weighted),
                }
                for currency, (count, amount, weighted) in sorted(totals.items())
            ],
        }

    # -- attainment --------------------------------------------------------------------------
    def attainment(self, query: Any) -> dict[str, Any]:
        """Won amount (won in the period, in CNY) against each subject's target: a person's
        opportunities are those they own, a department's those of it and its
        sub-departments. Subjects with a target or a won amount are listed."""
        self.principal.require(READ)
        params = load(AttainmentQuerySchema(), query)
        period = parse_period(params["period"])
        subject_type = SubjectType(params["subject_type"])
        periods = {str(period), *(str(m) for m in period.months())}
        set_targets: dict[str, dict[str, Decimal]] = {}
        visible = Targets(self.context).visible()
        for stored in target_rows.list_targets(
            self.session, visible, subject_type.value, None, periods
        ):
            set_targets.setdefault(stored.subject_id, {})[stored.period] = stored.amount
        start, end = midnight(period.start), midnight(period.end)
        filters = self.filters({})
        if subject_type is SubjectType.PERSON:
            subjects = self.people_won(filters, start, end, set_targets)
        else:
            subjects = self.departments_won(filters, start, end, set_targets)
        wanted = params.get("subject_id")
        items = []
        for subject_id, user_id, name, won in subjects:
            if wanted and subject_id != wanted:
                continue
            target = target_for(period, set_targets.get(subject_id or "", {}))
            figure = rules.attainment(subject_id or "", str(period), target, won)
            items.append(
                {
                    "subject_type": subject_type.value,
                    "subject_id": subject_id,
                    "user_id": user_id,
                    "name": name,
                    "period": figure.period,
                    "currency": DEFAULT_CURRENCY,
                    "target": None if target is None else format_amount(target),
                    "won": format_amount(figure.won),
                    "percent": text(figure.percent),
                }
            )
        return {"period": str(period), "subject_type": subject_type.value, "items": items}

    def people_won(
        self,
        filters: rows.Filters,
        start: datetime,
        end: datetime,
        set_targets: dict[str, dict[str, Decimal]],
    ) -> list[tuple[str | None, str | None, str | None, Decimal]]:
        """(person id, user id, name, won) of each person with a target or a won amount;
        an owner who is no known person is listed by user id only."""
        won = rows.won(self.session, filters, "owner", start, end, DEFAULT_CURRENCY)
        people = rows.people_by_user(self.session, won)
        names = target_rows.subject_names(self.session, "person", set_targets)
        users = read_models.users_of_people(self.session, set_targets)
        found: dict[str | None, list[Any]] = {}
        for person_id in set_targets:
            found[person_id] = [users.get(person_id), names.get(person_id), Decimal(0)]
        subjects: list[tuple[str | None, str | None, str | None, Decimal]] = []
        for owner, amount in won.items():
            person = people.get(owner or "")
            if person is None:
                subjects.append((None, owner, None, amount))
                continue
            entry = found.setdefault(person.id, [owner, person.name, Decimal(0)])
            entry[0], entry[1] = owner, person.name
            entry[2] += amount
        listed = [(pid, user, name, amount) for pid, (user, name, amount) in found.items()]
        return sorted(listed, key=lambda s: (s[2] or "", s[0] or "")) + subjects

    def departments_won(
        self,
        filters: rows.Filters,
        start: datetime,
        end: datetime,
        set_targets: dict[str, dict[str, Decimal]],
    ) -> list[tuple[str | None, str | None, str | None, Decimal]]:
        """(department id, None, name, won in it and below) of each department with a target
        or a won amount of its own."""
        won = rows.won(self.session, filters, "department", start, end, DEFAULT_CURRENCY)
        ids = sorted({*set_targets, *(d for d in won if d is not None)})
        names = rows.department_names(self.session, ids)
        subjects = []
        for department_id in ids:
            below = activity_rows.departments_under(self.session, department_id)
            amount = sum((a for d, a in won.items() if d in below), Decimal(0))
            subjects.append((department_id, None, names.get(department_id), amount))
        return sorted(subjects, key=lambda s: (s[2] or "", s[0] or ""))

    # -- funnel and days per stage -----------------------------------------------------------
    def process_code(self, params: dict[str, Any]) -> str | None:
        """The process asked for, else the first active one by code."""
        if params.get("process_code"):
            return str(params["process_code"])
        codes = rows.process_codes(self.session)
        return codes[0] if codes else None

    def funnel(self, query: Any) -> dict[str, Any]:
        """Of the opportunities created in the period, how many got at least as far as each
        open stage and the won stage (a skipped stage counts as passed), and the conversion
        from each stage to the next."""
        self.principal.require(READ)
        params = load(FunnelQuerySchema(), query)
        code = self.process_code(params)
        process = rows.current_revision(self.session, code) if code else None
        if code is None or process is None:
            return {"process_code": code, "opportunities": 0, "steps": []}
        stages = rows.stages_of(self.session, process.id)
        path = [s for s in stages if s.outcome == Outcome.OPEN] + [
            s for s in stages if s.outcome == Outcome.WON
        ]
        total, furthest = rows.furthest_reached(
            self.session,
            self.filters(params, code),
            [s.code for s in path],
            day_start(params.get("start")),
            day_after(params.get("end")),
        )
        steps: list[dict[str, Any]] = []
        for index, stage in enumerate(path):
            reached = sum(n for f, n in furthest.items() if f is not None and f >= index)
            before = steps[-1]["reached"] if steps else 0
            step = rules.FunnelStep(
                stage.code, reached, rules.percent(reached, before) if steps else None
            )
            steps.append(
                {
                    "stage_code": step.stage_code,
                    "name": stage.name,
                    "reached": step.reached,
                    "conversion": text(step.conversion),
                }
            )
        return {"process_code": code, "opportunities": total, "steps": steps}

    def stage_durations(self, query: Any) -> dict[str, Any]:
        """Average days per stage over the stays that ended in the period (an opportunity
        counts once per stage, with every stay in it), in the process's stage order."""
        self.principal.require(READ)
        params = load(StageDurationQuerySchema(), query)
        code = self.process_code(params)
        if code is None:
            return {"process_code": code, "items": []}
        process = rows.current_revision(self.session, code)
        stages = rows.stages_of(self.session, process.id) if process else []
        names = {s.code: s.name for s in stages}
        found = rows.stage_durations(
            self.session,
            self.filters(params, code),
            day_start(params.get("start")),
            day_after(params.get("end")),
        )
        by_code = {stage_code: (n, seconds) for stage_code, n, seconds in found}
        order = {s.code: rank for rank, s in enumerate(stages)}
        items = []
        for stage_code in ordered(by_code, order):
            if stage_code is None:
                continue
            count, seconds = by_code[stage_code]
            days = (seconds / SECONDS_PER_DAY).quantize(rules.ONE_DECIMAL, ROUND_HALF_UP)
            duration = rules.StageDuration(stage_code, count, days)
            items.append(
                {
                    "stage_code": duration.stage_code,
                    "name": names.get(stage_code),
                    "opportunities": duration.opportunities,
                    "average_days": str(duration.average_days),
                }
            )
        return {"process_code": code, "items": items}

    # -- win rates ---------------------------------------------------------------------------
    def win_rates(self, query: Any) -> dict[str, Any]:
        """Won, lost and abandoned opportunities closed in the period per owner or
        department, won out of won and lost; and the lost ones per loss reason."""
        self.principal.require(READ)
        params = load(WinRateQuerySchema(), query)
        by: str = params["by"]
        filters = self.filters(params)
        start, end = day_start(params.get("start")), day_after(params.get("end"))
        counts: dict[str | None, dict[str, int]] = {}
        for key, status, n in rows.closed_counts(self.session, filters, by, start, end):
            counts.setdefault(key, {"won": 0, "lost": 0, "abandoned": 0})[status] = n
        names = self.names(by, counts)
        items = []
        for key in ordered(counts, {}):
            won, lost, abandoned = (counts[key][s] for s in ("won", "lost", "abandoned"))
            rate = rules.WinRate(key, won, lost, abandoned, rules.percent(won, won + lost))
            items.append(
                {
                    "key": rate.key,
                    "name": names.get(key or ""),
                    "won": rate.won,
                    "lost": rate.lost,
                    "abandoned": rate.abandoned,
                    "win_rate": text(rate.win_rate),
                }
            )
        losses = rows.losses(self.session, filters, start, end)
        lost_total = sum(n for _, n in losses)
        reasons = rows.loss_reason_names(self.session)
        ranked = sorted(losses, key=lambda item: (-item[1], item[0] is None, item[0] or ""))
        return {
            "by": by,
            "items": items,
            "loss_reasons": [
                {
                    "loss_reason": reason,
                    "name": reasons.get(reason or ""),
                    "lost": n,
                    "share": text(rules.percent(n, lost_total)),
                }
                for reason, n in ranked
            ],
        }
