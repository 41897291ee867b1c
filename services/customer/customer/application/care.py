"""Customer care records (客户关怀): visits, calls, gifts and greetings."""

from __future__ import annotations

from typing import Any

from crm_common.errors import ValidationFailed
from crm_common.schemas import load
from customer import repository
from customer.application.base import READ, WRITE, CustomerUseCases, dump, dump_all
from customer.domain.care import CARE_ON_BEHALF, care_recorder
from customer.domain.customers import check_editable
from customer.models import CareRecord
from customer.schemas import CareRecordInputSchema, CareRecordSchema

care_schema = CareRecordSchema()
HISTORY_FIELDS = ("kind", "date", "note", "by_user_id", "contact_id")


class CareRecords(CustomerUseCases):
    def list(self, customer_id: Any) -> list[dict[str, Any]]:
        self.principal.require(READ)
        customer = self.customer(customer_id)
        return dump_all(care_schema, repository.care_records_of(self.session, customer.id))

    def add(self, customer_id: Any, data: Any) -> dict[str, Any]:
        self.principal.require(WRITE)
        customer = self.customer(customer_id)
        check_editable(customer)
        values = load(CareRecordInputSchema(), data)
        contact_id = values.get("contact_id")
        if contact_id is not None and not repository.is_contact_of(
            self.session, contact_id, customer.id
        ):
            raise ValidationFailed.on("contact_id", "is not a contact of this customer")
        values["by_user_id"] = care_recorder(
            values.get("by_user_id"),
            self.context.actor_id,
            self.principal.can(CARE_ON_BEHALF),
        )
        record = CareRecord(customer_id=customer.id, **values)
        self.session.add(record)
        self.session.flush()
        dumped = dump(care_schema, record)
        self.record_history(
            customer.id,
            "care_record",
            record.id,
            "created",
            new={k: dumped[k] for k in HISTORY_FIELDS},
        )
        return dumped
