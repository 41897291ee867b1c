import uuid

import pytest
from marshmallow import ValidationError

from crm_common.context import Principal, bind, current_principal, current_request_id
from crm_common.errors import Unauthenticated
from crm_common.events import EnvelopeSchema, make_envelope


def test_envelope_has_the_documented_fields_and_validates():
    envelope = make_envelope("customer_created", {"id": "1"}, source="customer", actor_id="u1")

    assert set(envelope) == {
        "event_id",
        "type",
        "version",
        "occurred_at",
        "source",
        "actor_id",
        "data",
    }
    uuid.UUID(envelope["event_id"])
    loaded = EnvelopeSchema().load({**envelope, "unknown_future_field": 1})
    assert loaded["type"] == "customer_created"


def test_envelope_without_event_id_is_rejected():
    envelope = make_envelope("x", {}, source="s", actor_id=None)
    del envelope["event_id"]
    with pytest.raises(ValidationError):
        EnvelopeSchema().load(envelope)


def test_principal_round_trips_through_context_data():
    principal = Principal("u-1", "d-east", ("sales",), ("customer:read",), ({"region": ["华东"]},))
    assert Principal.from_context(principal.as_context()) == principal


def test_no_principal_means_unauthenticated():
    bind(None, None)
    with pytest.raises(Unauthenticated):
        current_principal()
    bind(Principal("u-2"), "req-1")
    assert current_principal().user_id == "u-2"
    assert current_request_id() == "req-1"
    bind(None, None)
