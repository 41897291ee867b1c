import pytest
from marshmallow import Schema, ValidationError, fields
from nameko.exceptions import deserialize, serialize

from crm_common.errors import Conflict, CrmError, NotFound, Unavailable, ValidationFailed


@pytest.mark.parametrize("error_type", [NotFound, Conflict, Unavailable, ValidationFailed])
def test_errors_cross_the_wire_with_type_message_and_typed_details(error_type):
    error = error_type("it went wrong", {"current_version": 3, "candidates": [{"score": 0.9}]})

    received = deserialize(serialize(error))

    assert type(received) is error_type
    assert received.message == "it went wrong"
    assert received.details == {"current_version": 3, "candidates": [{"score": 0.9}]}
    assert received.status == error_type.status


def test_not_found_names_the_resource():
    error = NotFound.of("customer", "42")
    assert error.details == {"resource": "customer", "id": "42"}
    assert error.code == "not_found"


def test_validation_failed_keeps_marshmallow_field_structure():
    class Input(Schema):
        name = fields.String(required=True)
        email = fields.Email()

    with pytest.raises(ValidationError) as caught:
        Input().load({"email": "nope"})

    error = ValidationFailed.from_marshmallow(caught.value)

    assert set(error.field_errors) == {"name", "email"}
    assert deserialize(serialize(error)).field_errors == error.field_errors


def test_every_error_has_a_distinct_code_and_status():
    kinds = CrmError.__subclasses__()
    assert len({kind.code for kind in kinds}) == len(kinds)
    assert {kind.status for kind in kinds} == {401, 403, 404, 409, 422, 429, 503}
