import json
import logging

import pytest
from nameko.exceptions import RemoteError, UnknownService
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound

from crm_common.errors import (
    Conflict,
    NotFound,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from gateway.problems import HttpProblem, response_for, unauthenticated


def render(exc):
    response = response_for(exc, "req-1")
    assert response.mimetype == "application/problem+json"
    return response, json.loads(response.get_data())


def test_crm_errors_keep_status_code_and_details():
    response, body = render(
        Conflict("duplicates", {"reason": "duplicate_customer", "candidates": [{"id": "c1"}]})
    )

    assert response.status_code == 409
    assert body == {
        "type": "urn:crm:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "duplicates",
        "code": "conflict",
        "request_id": "req-1",
        "reason": "duplicate_customer",
        "candidates": [{"id": "c1"}],
    }


def test_field_errors_are_lists_of_reasons():
    _, body = render(ValidationFailed("bad", {"errors": {"name": ["required"], "phone": "bad"}}))

    assert body["status"] == 422
    assert body["errors"] == {"name": ["required"], "phone": ["bad"]}


def test_details_cannot_overwrite_the_standard_members():
    _, body = render(NotFound("gone", {"status": 200, "code": "ok", "request_id": "x", "id": "7"}))

    assert (body["status"], body["code"], body["request_id"]) == (404, "not_found", "req-1")
    assert body["id"] == "7"


def test_unauthenticated_carries_a_bearer_challenge():
    response, _ = render(Unauthenticated("no principal"))
    own, _ = render(unauthenticated('bad "token"'))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="crm"'
    assert own.headers["WWW-Authenticate"] == (
        'Bearer realm="crm", error="invalid_token", error_description="bad \\"token\\""'
    )


def test_unavailable_and_unknown_service_are_503_with_retry_after():
    for exc in (Unavailable("down", {"service": "customer"}), UnknownService("customer")):
        response, body = render(exc)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert body["service"] == "customer"


def test_unexpected_errors_are_500_logged_and_not_leaked(caplog):
    with caplog.at_level(logging.ERROR, logger="gateway.problems"):
        response, body = render(KeyError("password=hunter2"))
        remote, _ = render(RemoteError("ValueError", "password=hunter2"))

    assert response.status_code == remote.status_code == 500
    assert body["code"] == "internal_error"
    assert "hunter2" not in response.get_data(as_text=True)
    assert "hunter2" not in remote.get_data(as_text=True)
    assert len(caplog.records) == 2


def test_routing_errors():
    not_found, body = render(RouteNotFound())
    wrong_method, wrong = render(MethodNotAllowed(valid_methods=["GET", "PATCH"]))

    assert not_found.status_code == 404 and body["code"] == "not_found"
    assert wrong_method.status_code == 405 and wrong["code"] == "method_not_allowed"
    assert wrong_method.headers["Allow"] == "GET, OPTIONS, PATCH"


def test_gateway_problems_render_their_extras():
    response, body = render(HttpProblem(504, "upstream_timeout", "slow", extra={"service": "s"}))

    assert response.status_code == 504
    assert body["title"] == "Gateway Timeout"
    assert body["service"] == "s"


def test_nested_field_errors_are_flattened_to_dotted_paths():
    nested = {"status": {"0": ["Must be one of: potential."]}, "address": {"city": "bad"}}
    _, body = render(ValidationFailed("bad", {"errors": nested}))
    assert body["errors"] == {"status.0": ["Must be one of: potential."], "address.city": ["bad"]}
    assert all(
        isinstance(reasons, list) and all(isinstance(reason, str) for reason in reasons)
        for reasons in body["errors"].values()
    )


def test_marshmallow_reasons_of_list_items_arrive_flat():
    from marshmallow import Schema, ValidationError
    from marshmallow.validate import OneOf

    from crm_common.schemas import CommaList, Text

    class Filter(Schema):
        status = CommaList(Text(validate=OneOf(["formal"])))

    with pytest.raises(ValidationError) as caught:
        Filter().load({"status": "formal,ok"})
    error = ValidationFailed.from_marshmallow(caught.value)
    assert list(error.field_errors) == ["status.1"]


def test_too_many_requests_from_a_service_carries_retry_after():
    response, body = render(TooManyRequests.retry_in("wait", 7))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7" and body["retry_after"] == 7
