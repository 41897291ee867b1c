import uuid

import pytest
from marshmallow import ValidationError

from crm_common.context import Principal, bind, current_principal, current_request_id
from crm_common.errors import Forbidden, Unauthenticated
from crm_common.events import EnvelopeSchema, major_version, make_envelope
from crm_common.identity import InvalidToken, verify
from tests.support.tokens import TRUST, token_for, user_token


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


def test_principal_round_trips_through_a_signed_token():
    grants = ({"regions": [{"path": "华东", "subtree": True}], "categories": ["A"]}, {})
    principal = Principal("u-1", "d-east", ("sales",), ("customer:read",), grants)
    assert Principal.from_claims(verify(TRUST, token_for(principal))) == principal


def test_a_malformed_grant_in_a_token_is_refused():
    token = user_token("u-1", grants=[{"owner": "everyone"}])
    with pytest.raises(InvalidToken, match="malformed grant"):
        Principal.from_claims(verify(TRUST, token))


def test_permissions_are_checked_by_name():
    principal = Principal("u-1", permissions=("customer:read",))
    assert principal.can("customer:read") and not principal.can("customer:write")
    principal.require("customer:read")
    with pytest.raises(Forbidden) as caught:
        principal.require("customer:write")
    assert caught.value.details == {"permission": "customer:write"}


def test_no_principal_means_unauthenticated():
    bind(None, None)
    with pytest.raises(Unauthenticated):
        current_principal()
    bind(Principal("u-2"), "req-1")
    assert current_principal().user_id == "u-2"
    assert current_request_id() == "req-1"
    bind(None, None)


@pytest.mark.parametrize("version", [1, "1", "1.4", 2, "2.0"])
def test_a_version_is_a_major_or_major_dot_minor(version):
    assert EnvelopeSchema().load(
        {**make_envelope("x", {}, source="s", actor_id=None), "version": version}
    )


@pytest.mark.parametrize("version", ["1.2.3", "v1", 0, True, "", None])
def test_other_versions_are_rejected(version):
    with pytest.raises(ValidationError):
        EnvelopeSchema().load(
            {**make_envelope("x", {}, source="s", actor_id=None), "version": version}
        )


def test_the_major_version_decides_compatibility():
    assert major_version(1) == major_version("1.7") == 1
    assert major_version("2.0") == 2
