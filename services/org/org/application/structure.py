"""The org structure other services keep a copy of: departments, regions and people, page by
page.

``department_changed``, ``region_changed`` and ``person_changed`` keep a consumer's copy
current; this snapshot lets a consumer with an empty (or doubtful) copy catch up. A person
carries the codes of their user's enabled roles: a change of the user's roles, or of a role's
code or disabled flag, moves the person's version on and announces them again. Only services
read it: the caller must be a service identity holding ``org:structure:read`` (no role hands
that out).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from crm_common.application import UseCases
from crm_common.errors import Forbidden, ValidationFailed
from crm_common.schemas import load
from org import repository
from org.models import Person
from org.schemas import DepartmentSchema, PersonSchema, QuerySchema, RegionSchema

STRUCTURE_READ = "org:structure:read"
KINDS = ("departments", "regions", "people")
DUMPERS = {"departments": DepartmentSchema(), "regions": RegionSchema()}
person_schema = PersonSchema()


def shared_people(session: Session, people: Iterable[Person]) -> list[dict[str, Any]]:
    """People as other contexts keep them (``SharedPersonSchema``): each with the id of the
    user account linked to them, or none, and the codes of that user's enabled roles."""
    people = list(people)
    users = repository.user_of_each_person(session, [person.id for person in people])
    roles = repository.enabled_role_codes(session, users.values())
    shared = []
    for person in people:
        user_id = users.get(person.id)
        shared.append(
            {
                **person_schema.dump(person),
                "user_id": user_id,
                "role_codes": roles.get(user_id, []) if user_id else [],
            }
        )
    return shared


class Structure(UseCases):
    def snapshot(self, kind: Any, cursor: Any = None, limit: Any = None) -> dict[str, Any]:
        """One page of every department, region or person, disabled ones included, each as
        its ``*_changed`` event carries it."""
        if not self.principal.is_service:
            raise Forbidden("only a service may read the org structure snapshot")
        self.principal.require(STRUCTURE_READ)
        if kind not in KINDS:
            raise ValidationFailed.on("kind", f"is one of {', '.join(KINDS)}")
        params = load(QuerySchema(), {"cursor": cursor, "limit": limit})
        page = repository.page(self.session, kind, params)
        if kind == "people":
            items = shared_people(self.session, page.items)
        else:
            items = DUMPERS[kind].dump(page.items, many=True)
        return {"items": items, "next_cursor": page.next_cursor}
