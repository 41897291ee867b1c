"""A fresh notify database catches up from org's structure snapshot (departments and people,
read as notify, permission ``org:structure:read``), then events keep it current
(``crm_common.catch_up``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm_common import catch_up
from crm_common.catch_up import Snapshot
from notify.application.read_models import ReadModels, UnusableRecord
from notify.models.rules import CatchUp as CatchUpRecord

SNAPSHOTS: tuple[Snapshot[ReadModels], ...] = (
    Snapshot("org", "structure_snapshot", "departments", ReadModels.keep_department),
    Snapshot("org", "structure_snapshot", "people", ReadModels.keep_person),
)


class CatchUp(catch_up.CatchUp[ReadModels]):
    snapshots = SNAPSHOTS
    record_model = CatchUpRecord
    unusable = (UnusableRecord,)

    def read_models(self, session: Session) -> ReadModels:
        return ReadModels(session)
