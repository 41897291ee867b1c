"""Sales processes (销售流程): ordered stages an opportunity moves through.

A process lists its open stages in order, then its closing stages: exactly one won stage and at
least one lost stage. Each stage has a default win probability and the opportunity fields that
must be filled to enter it. Moving forward checks those fields (for the target stage and any
stage skipped on the way); moving back needs a reason; skipping a stage needs a process that
allows it. A lost stage can be entered from any open stage; the won stage only after the last
open stage, unless the process allows skipping.

Processes are versioned: an edit makes a new version with a new id, and an opportunity keeps
the version it follows, so editing a process never rewrites history.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from crm_common.errors import Conflict, ValidationFailed


class Outcome(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


DECISION_MAKER = "decision_maker"
"""Requirable as a field: at least one contact of the opportunity has the decision-maker role."""

OPPORTUNITY_REQUIRABLE_FIELDS = (
    "expected_amount",
    "expected_close_date",
    "description",
    "contacts",
    DECISION_MAKER,
    "lines",
    "competitors",
    "tags",
    "source_campaign_id",
    "source_lead_id",
)
"""The opportunity fields a stage may require before an opportunity enters it."""

MAX_CODE_LENGTH = 64
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class Stage:
    code: str
    name: str
    position: int
    probability: int
    required_fields: tuple[str, ...] = ()
    outcome: str = Outcome.OPEN

    @property
    def is_open(self) -> bool:
        return self.outcome == Outcome.OPEN


@dataclass(frozen=True)
class Process:
    id: str
    code: str
    name: str
    stages: tuple[Stage, ...]
    allow_skip: bool = False
    active: bool = True
    version: int = 1

    def stage(self, code: str, field: str = "stage_code") -> Stage:
        """The stage with ``code``, or ``ValidationFailed`` on ``field``."""
        for stage in self.stages:
            if stage.code == code:
                return stage
        known = ", ".join(s.code for s in self.stages)
        raise ValidationFailed.on(
            field, f"{code!r} is not a stage of process {self.code} (stages: {known})"
        )

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.is_open)

    @property
    def first_stage(self) -> Stage:
        return self.open_stages[0]

    @property
    def won_stage(self) -> Stage:
        return next(s for s in self.stages if s.outcome == Outcome.WON)

    @property
    def lost_stages(self) -> tuple[Stage, ...]:
        return tuple(s for s in self.stages if s.outcome == Outcome.LOST)

    @property
    def funnel_stages(self) -> tuple[Stage, ...]:
        """The open stages in order, then the won stage: the path a won deal takes."""
        return (*self.open_stages, self.won_stage)


STANDARD_STAGES = (
    Stage("initial_contact", "初步接触", 10, 10),
    Stage("needs_confirmed", "需求确认", 20, 30),
    Stage("proposal", "方案报价", 30, 50, ("expected_amount", "expected_close_date")),
    Stage("negotiation", "商务谈判", 40, 75, (DECISION_MAKER,)),
    Stage("won", "赢单", 90, 100, ("expected_amount",), Outcome.WON),
    Stage("lost", "输单", 99, 0, (), Outcome.LOST),
)
"""The stages of the process a new installation starts with."""


# -- definition ----------------------------------------------------------------------------
def _text(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    return value.strip() if isinstance(value, str) else ""


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _check_text(errors: dict[str, list[str]], field: str, value: str, limit: int) -> None:
    if not value:
        errors.setdefault(field, []).append("is required")
    elif len(value) > limit:
        errors.setdefault(field, []).append(f"has at most {limit} characters")


def _parse_stage(raw: Mapping[str, Any], index: int, errors: dict[str, list[str]]) -> Stage | None:
    at = f"stages.{index}"
    found: dict[str, list[str]] = {}
    code, name = _text(raw, "code"), _text(raw, "name")
    _check_text(found, f"{at}.code", code, MAX_CODE_LENGTH)
    _check_text(found, f"{at}.name", name, MAX_NAME_LENGTH)
    raw_position = raw.get("position", (index + 1) * 10)
    position = _whole_number(raw_position)
    if position is None:
        found[f"{at}.position"] = ["must be a whole number"]
    outcome = raw.get("outcome", Outcome.OPEN) or Outcome.OPEN
    if outcome not in tuple(Outcome):
        found[f"{at}.outcome"] = ["must be one of open, won, lost"]
    probability = _whole_number(raw.get("probability"))
    if probability is None or not 0 <= probability <= 100:
        found[f"{at}.probability"] = ["must be a whole number from 0 to 100"]
    elif outcome == Outcome.WON and probability != 100:
        found[f"{at}.probability"] = ["must be 100 for the won stage"]
    elif outcome == Outcome.LOST and probability != 0:
        found[f"{at}.probability"] = ["must be 0 for a lost stage"]
    required = raw.get("required_fields") or ()
    if isinstance(required, str) or not isinstance(required, Sequence):
        found[f"{at}.required_fields"] = ["must be a list of field names"]
        required = ()
    else:
        for field in required:
            if field not in OPPORTUNITY_REQUIRABLE_FIELDS:
                found.setdefault(f"{at}.required_fields", []).append(
                    f"{field!r} cannot be required; choose from "
                    + ", ".join(OPPORTUNITY_REQUIRABLE_FIELDS)
                )
        if len(set(required)) != len(required):
            found.setdefault(f"{at}.required_fields", []).append("names a field twice")
    errors.update(found)
    if found or position is None or probability is None:
        return None
    return Stage(code, name, position, probability, tuple(required), Outcome(outcome))


def _check_order(stages: Sequence[Stage | None], errors: dict[str, list[str]]) -> None:
    seen_codes: set[str] = set()
    previous: int | None = None
    closing_seen = False
    for index, stage in enumerate(stages):
        if stage is None:
            continue
        at = f"stages.{index}"
        if stage.code in seen_codes:
            errors.setdefault(f"{at}.code", []).append(f"{stage.code!r} is used by another stage")
        seen_codes.add(stage.code)
        if previous is not None and stage.position <= previous:
            errors.setdefault(f"{at}.position", []).append(
                f"must be greater than the position of the stage before ({previous})"
            )
        previous = stage.position
        if stage.is_open and closing_seen:
            errors.setdefault(f"{at}.outcome", []).append(
                "an open stage cannot come after a won or lost stage"
            )
        closing_seen = closing_seen or not stage.is_open


def define_process(
    id: str,
    code: str,
    name: str,
    stages: Sequence[Mapping[str, Any]],
    *,
    allow_skip: bool = False,
    active: bool = True,
    version: int = 1,
) -> Process:
    """A process from its definition, or ``ValidationFailed`` listing every fault by field
    (``stages.2.probability``)."""
    errors: dict[str, list[str]] = {}
    _check_text(errors, "code", (code or "").strip(), MAX_CODE_LENGTH)
    _check_text(errors, "name", (name or "").strip(), MAX_NAME_LENGTH)
    parsed = [_parse_stage(raw, index, errors) for index, raw in enumerate(stages)]
    _check_order(parsed, errors)
    outcomes = [raw.get("outcome", Outcome.OPEN) or Outcome.OPEN for raw in stages]
    if (
        outcomes.count(Outcome.OPEN) < 1
        or outcomes.count(Outcome.WON) != 1
        or outcomes.count(Outcome.LOST) < 1
    ):
        errors.setdefault("stages", []).append(
            "a process needs at least one open stage, then exactly one won stage and at least "
            "one lost stage"
        )
    if errors:
        raise ValidationFailed("the sales process is not valid", {"errors": errors})
    return Process(
        id=id,
        code=code.strip(),
        name=name.strip(),
        stages=tuple(stage for stage in parsed if stage is not None),
        allow_skip=allow_skip,
        active=active,
        version=version,
    )


def revise_process(
    current: Process,
    new_id: str,
    *,
    name: str | None = None,
    stages: Sequence[Mapping[str, Any]] | None = None,
    allow_skip: bool | None = None,
    active: bool | None = None,
) -> Process:
    """The next version of ``current`` (same code, a new id); what is not given is kept."""
    if stages is None:
        revised = replace(
            current,
            id=new_id,
            name=current.name if name is None else name.strip(),
            allow_skip=current.allow_skip if allow_skip is None else allow_skip,
            active=current.active if active is None else active,
            version=current.version + 1,
        )
        errors: dict[str, list[str]] = {}
        _check_text(errors, "name", revised.name, MAX_NAME_LENGTH)
        if errors:
            raise ValidationFailed("the sales process is not valid", {"errors": errors})
        return revised
    return define_process(
        new_id,
        current.code,
        current.name if name is None else name,
        stages,
        allow_skip=current.allow_skip if allow_skip is None else allow_skip,
        active=current.active if active is None else active,
        version=current.version + 1,
    )


def stage_as_json(stage: Stage) -> dict[str, Any]:
    return {
        "code": stage.code,
        "name": stage.name,
        "position": stage.position,
        "probability": stage.probability,
        "required_fields": list(stage.required_fields),
        "outcome": str(stage.outcome),
    }


# -- moves ---------------------------------------------------------------------------------
def _role(contact: Any) -> Any:
    if isinstance(contact, Mapping):
        return contact.get("role")
    return getattr(contact, "role", None)


def is_filled(field: str, values: Mapping[str, Any]) -> bool:
    """Whether the opportunity ``values`` fill ``field``: blank text, an empty list, ``None``
    and an amount of zero count as missing; ``decision_maker`` looks at ``values["contacts"]``
    (mappings or objects with a ``role``)."""
    if field == DECISION_MAKER:
        return any(_role(contact) == DECISION_MAKER for contact in values.get("contacts") or ())
    value = values.get(field)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, int | Decimal):
        return value != 0
    if isinstance(value, Collection):
        return len(value) > 0
    return True


def missing_fields(stages: Sequence[Stage], values: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each required field that ``values`` leave empty, with the first stage that needs it."""
    missing: dict[str, list[str]] = {}
    for stage in stages:
        for field in stage.required_fields:
            if field not in missing and not is_filled(field, values):
                missing[field] = [f"is required to enter {stage.name}"]
    return missing


@dataclass(frozen=True)
class StageMove:
    source: Stage
    target: Stage
    skipped: tuple[Stage, ...] = ()
    reason: str | None = None

    @property
    def forward(self) -> bool:
        return self.target.position > self.source.position

    @property
    def status(self) -> str:
        """The opportunity status the move leads to: open, won or lost."""
        return str(self.target.outcome)

    @property
    def closes(self) -> bool:
        return not self.target.is_open


def _passed(process: Process, source: Stage, target: Stage) -> tuple[Stage, ...]:
    """The open stages between ``source`` and ``target`` (up to the end for the won stage)."""
    return tuple(
        stage for stage in process.open_stages if source.position < stage.position < target.position
    )


def plan_move(
    process: Process,
    from_code: str,
    to_code: str,
    values: Mapping[str, Any],
    reason: str | None = None,
) -> StageMove:
    """Check a move from stage ``from_code`` to ``to_code`` of an opportunity with ``values``."""
    source = process.stage(from_code)
    target = process.stage(to_code)
    if not source.is_open:
        raise Conflict(
            f"the opportunity is closed in stage {source.name}; reopen it before moving it",
            {"reason": "opportunity_closed", "stage_code": source.code},
        )
    if target == source:
        raise ValidationFailed.on("stage_code", f"the opportunity is already in {source.name}")
    reason = (reason or "").strip() or None
    if target.position < source.position:
        if reason is None:
            raise ValidationFailed.on(
                "reason", f"is required to move back from {source.name} to {target.name}"
            )
        return StageMove(source, target, (), reason)
    skipped = () if target.outcome == Outcome.LOST else _passed(process, source, target)
    if skipped and not process.allow_skip:
        names = ", ".join(stage.name for stage in skipped)
        raise ValidationFailed.on(
            "stage_code",
            f"cannot skip {names}: process {process.name} moves one stage at a time",
        )
    missing = missing_fields((*skipped, target), values)
    if missing:
        raise ValidationFailed(
            f"fill in {', '.join(missing)} before moving to {target.name}",
            {"errors": missing, "stage_code": target.code},
        )
    return StageMove(source, target, skipped, reason)
