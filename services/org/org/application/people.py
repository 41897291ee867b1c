"""People (人员档案): employees, with or without a user account."""

from __future__ import annotations

from typing import Any

from org import repository
from org.application.admin import Aggregate
from org.application.sessions import revoke_all
from org.domain.conflicts import self_disable
from org.domain.users import ACTIVE
from org.models import PERSON_FIELDS, Department, Person
from org.schemas import PersonInputSchema, PersonQuerySchema, PersonSchema


class People(Aggregate):
    kind = "people"
    entity_type = "person"
    fields = PERSON_FIELDS
    dumper = PersonSchema()
    input_schema = PersonInputSchema
    query_schema = PersonQuerySchema
    disabling_ends_sessions = True

    def create(self, values: dict[str, Any]) -> Person:
        self.check_free(Person.code, values["code"], None, "code")
        self.check_exist(Department, [values.get("department_id")], "department_id")
        person = Person(**values)
        self.add(person)
        self.announce(person)
        return person

    def update(self, person: Person, values: dict[str, Any]) -> None:
        """A person who leaves loses every sign-in session of their users."""
        if "code" in values:
            self.check_free(Person.code, values["code"], person.id, "code")
        self.check_exist(Department, [values.get("department_id")], "department_id")
        users = self.concerned_users(person)
        watched = self.authz.effective(users)
        was_active = person.status == ACTIVE
        leaving = was_active and values.get("status", ACTIVE) != ACTIVE
        if leaving and self.context.actor_id in users:
            raise self_disable()
        if not self.edit(person, values):
            return
        if was_active and person.status != ACTIVE:
            revoke_all(self.session, self.context.outbox, users, "person_left", self.now)
        self.settle(watched)
        self.announce(person)

    def concerned_users(self, record: Person) -> set[str]:
        return repository.users_of_people(self.session, [record.id])

    def announce(self, record: Person) -> None:
        self.person_changed([record])
