"""Sales processes (销售流程): every user with ``opportunity:read`` lists and reads them,
``sales:admin`` defines and revises them.

A process is stored as revisions: revising one adds a revision with a new id under the same
code and points the old one at it (``superseded_by``); opportunities keep the revision they
follow, so their stage history is never rewritten. A new database gets the standard process
(``domain.processes.STANDARD_STAGES``) and the default loss reasons the first time the service
starts, or the first time an opportunity needs them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import UseCases
from crm_common.context import Principal
from crm_common.errors import Conflict, Forbidden, ValidationFailed
from crm_common.history import created, diff
from crm_common.models import check_version, split_version
from crm_common.schemas import load
from sales.application.competitors import DEFAULT_LOSS_REASONS
from sales.application.history import dump, record_history
from sales.domain.processes import (
    STANDARD_STAGES,
    Outcome,
    Process,
    Stage,
    define_process,
    revise_process,
    stage_as_json,
)
from sales.models import SalesProcess, SalesStage
from sales.repository import opportunities as rows
from sales.schemas.opportunities import (
    SalesProcessInputSchema,
    SalesProcessQuerySchema,
    SalesProcessSchema,
)

READ = "opportunity:read"
ADMIN = "sales:admin"
STANDARD_CODE = "standard"
STANDARD_NAME = "标准销售流程"
HISTORY_TYPE = "sales_process"
SEED_CHECK_SECONDS = 600
"""How often a running service looks whether the standard process and loss reasons exist."""
DEFINITION_FIELDS = ("name", "allow_skip", "active", "stages")

process_schema = SalesProcessSchema()


def require_any(principal: Principal, *permissions: str) -> None:
    """``Forbidden`` unless the principal holds one of ``permissions``."""
    if not any(principal.can(permission) for permission in permissions):
        raise Forbidden(
            f"this needs one of the permissions {', '.join(permissions)}",
            {"permission": permissions[0]},
        )


def as_domain(process: SalesProcess, stages: Sequence[SalesStage]) -> Process:
    """The stored revision as the domain's ``Process``."""
    return Process(
        id=str(process.id),
        code=process.code,
        name=process.name,
        stages=tuple(
            Stage(
                s.code,
                s.name,
                s.position,
                s.probability,
                tuple(s.required_fields or ()),
                Outcome(s.outcome),
            )
            for s in stages
        ),
        allow_skip=process.allow_skip,
        active=process.active,
        version=process.revision,
    )


def definition(process: Process) -> dict[str, Any]:
    """What a revision defines, JSON-ready (for the history)."""
    return {
        "name": process.name,
        "allow_skip": process.allow_skip,
        "active": process.active,
        "stages": [stage_as_json(stage) for stage in process.stages],
    }


def seed_defaults(session: Session, now: datetime) -> bool:
    """Store the standard process unless a process of its code exists, and the default loss
    reasons unless there are loss reasons; whether the standard process was stored. Safe to
    run from several containers at once."""
    stored = False
    if not rows.process_code_taken(session, STANDARD_CODE):
        stored = rows.insert_process_once(
            session,
            {
                "id": uuid.uuid4(),
                "code": STANDARD_CODE,
                "name": STANDARD_NAME,
                "revision": 1,
                "allow_skip": False,
                "active": True,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            },
            [stage_as_json(stage) for stage in STANDARD_STAGES],
        )
    if not rows.has_loss_reasons(session):
        rows.insert_loss_reasons_once(
            session,
            ({"code": code, "name": name, "active": True} for code, name in DEFAULT_LOSS_REASONS),
        )
    return stored


class Processes(UseCases):
    def list(self, query: Any) -> list[dict[str, Any]]:
        require_any(self.principal, READ, ADMIN)
        params = load(SalesProcessQuerySchema(), query)
        found = rows.current_processes(self.session, params["include_inactive"])
        stages = rows.stages_of(self.session, (process.id for process in found))
        return [self.view(process, stages[process.id]) for process in found]

    def get(self, process_id: Any) -> dict[str, Any]:
        """Any revision, the current one or one that opportunities still follow."""
        require_any(self.principal, READ, ADMIN)
        process = rows.get_process(self.session, process_id)
        return self.view(process, rows.stages_of(self.session, [process.id])[process.id])

    def create(self, data: Any) -> dict[str, Any]:
        self.principal.require(ADMIN)
        values = load(SalesProcessInputSchema(), data)
        if rows.process_code_taken(self.session, values["code"]):
            raise ValidationFailed.on("code", "is the code of another sales process")
        process = define_process(
            str(uuid.uuid4()),
            values["code"],
            values["name"],
            values["stages"],
            allow_skip=values.get("allow_skip", False),
            active=values.get("active", True),
        )
        stored = self.store(process)
        record_history(
            self.context,
            HISTORY_TYPE,
            process.code,
            "created",
            created(definition(process), DEFINITION_FIELDS),
        )
        return self.view(stored, rows.stages_of(self.session, [stored.id])[stored.id])

    def update(self, process_id: Any, changes: Any, expected_version: Any) -> dict[str, Any]:
        """A new revision of the process with the changes; the revision changed must be the
        current one, at the version the caller read."""
        self.principal.require(ADMIN)
        changes, expected_version = split_version(changes, expected_version)
        current = rows.get_process(self.session, process_id, for_update=True)
        if current.superseded_by is not None:
            raise Conflict(
                f"revision {current.revision} of process {current.code} was revised since; "
                "revise the current revision",
                {"reason": "process_superseded", "superseded_by": str(current.superseded_by)},
            )
        check_version(current, expected_version)
        values = load(SalesProcessInputSchema(), changes, partial=True)
        if "code" in values and values["code"] != current.code:
            raise ValidationFailed.on("code", "cannot be changed; create another process")
        before = as_domain(current, rows.stages_of(self.session, [current.id])[current.id])
        revised = revise_process(
            before,
            str(uuid.uuid4()),
            name=values.get("name"),
            stages=values.get("stages"),
            allow_skip=values.get("allow_skip"),
            active=values.get("active"),
        )
        field_changes = diff(
            definition(before), definition(revised), DEFINITION_FIELDS, unordered=()
        )
        if not field_changes:
            return self.view(current, rows.stages_of(self.session, [current.id])[current.id])
        stored = self.store(revised)
        current.superseded_by = stored.id
        current.updated_at = self.context.now
        self.session.flush()
        record_history(self.context, HISTORY_TYPE, current.code, "revised", field_changes)
        return self.view(stored, rows.stages_of(self.session, [stored.id])[stored.id])

    # -- for the opportunity use cases ---------------------------------------------------------
    def definition_of(self, process_id: uuid.UUID) -> Process:
        process = rows.get_process(self.session, process_id)
        return as_domain(process, rows.stages_of(self.session, [process.id])[process.id])

    def for_new_opportunity(self, process_id: uuid.UUID | None) -> Process:
        """The process a new opportunity follows: the current, active revision given, else
        the standard process (stored first if this database has none yet)."""
        if process_id is None:
            seed_defaults(self.session, self.context.now)
            process = rows.current_process_of_code(self.session, STANDARD_CODE)
            if process is None or not process.active:
                raise ValidationFailed.on(
                    "process_id", "is required: the standard sales process is not in use"
                )
        else:
            found = rows.find_process(self.session, process_id)
            if found is None:
                raise ValidationFailed.on("process_id", "is not a sales process")
            process = found
            if process.superseded_by is not None:
                raise ValidationFailed.on(
                    "process_id",
                    f"is an old revision; its current revision is {process.superseded_by}",
                )
            if not process.active:
                raise ValidationFailed.on("process_id", "is a sales process no longer in use")
        return as_domain(process, rows.stages_of(self.session, [process.id])[process.id])

    # -- helpers -------------------------------------------------------------------------------
    def store(self, process: Process) -> SalesProcess:
        return rows.insert_process(
            self.session,
            {
                "id": uuid.UUID(process.id),
                "code": process.code,
                "name": process.name,
                "revision": process.version,
                "allow_skip": process.allow_skip,
                "active": process.active,
                "created_at": self.context.now,
                "updated_at": self.context.now,
            },
            [stage_as_json(stage) for stage in process.stages],
        )

    @staticmethod
    def view(process: SalesProcess, stages: Sequence[SalesStage]) -> dict[str, Any]:
        columns = {
            name: getattr(process, name)
            for name in (
                "id",
                "code",
                "name",
                "revision",
                "allow_skip",
                "active",
                "superseded_by",
                "created_at",
                "updated_at",
                "version",
            )
        }
        return dump(
            process_schema,
            {**columns, "stages": [stage_as_json(s) for s in as_domain(process, stages).stages]},
        )
