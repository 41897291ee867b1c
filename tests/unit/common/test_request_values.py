"""Values that arrive in RPC arguments the way clients send them."""

import pytest

from crm_common.errors import ValidationFailed
from crm_common.models import split_version
from crm_common.schemas import parse_flag


def test_the_version_comes_from_the_argument_else_from_the_body():
    assert split_version({"name": "x", "version": 3}, None) == ({"name": "x"}, 3)
    assert split_version({"name": "x", "version": 3}, "5") == ({"name": "x"}, 5)
    assert split_version({"name": "x"}, 2) == ({"name": "x"}, 2)


@pytest.mark.parametrize(
    ("changes", "version", "reason"),
    [({"name": "x"}, None, "send the version"), ({"version": "three"}, None, "whole number")],
)
def test_a_missing_or_malformed_version_is_a_field_error(changes, version, reason):
    with pytest.raises(ValidationFailed, match=reason) as caught:
        split_version(changes, version)
    assert set(caught.value.field_errors) == {"version"}


@pytest.mark.parametrize(
    ("raw", "value"),
    [(True, True), (False, False), (1, True), (0, False), ("true", True), (" FALSE ", False)],
)
def test_flags(raw, value):
    assert parse_flag(raw, "flag") is value


@pytest.mark.parametrize("raw", ["maybe", 2, None, [True]])
def test_anything_else_is_a_field_error(raw):
    with pytest.raises(ValidationFailed) as caught:
        parse_flag(raw, "disabled")
    assert caught.value.field_errors == {"disabled": ["must be true or false"]}
