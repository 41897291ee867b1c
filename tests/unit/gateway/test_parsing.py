import json

import pytest
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from crm_common.errors import ValidationFailed
from crm_common.schemas import load
from customer.schemas import CustomerFilterSchema, CustomerQuerySchema
from gateway import parsing
from gateway.problems import HttpProblem


def request(**kwargs):
    return Request(EnvironBuilder(**kwargs).get_environ())


def status_of(call):
    with pytest.raises(HttpProblem) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("header", "version"),
    [('"3"', 3), ('W/"3"', 3), (' "12" ', 12), (None, None), ("", None)],
)
def test_if_match_versions(header, version):
    assert parsing.if_match_version(header) == version


@pytest.mark.parametrize("header", ["*", "3", '"abc"', '"3", "4"', 'W/"-1"'])
def test_if_match_that_names_no_single_version_is_400(header):
    problem = status_of(lambda: parsing.if_match_version(header))
    assert problem.status == 400 and problem.code == "invalid_if_match"


def test_split_version_prefers_nothing_and_needs_something():
    with_header = request(method="PATCH", headers={"If-Match": '"5"'})
    without = request(method="PATCH")

    assert parsing.split_version(with_header, {"name": "x"}) == ({"name": "x"}, 5)
    assert parsing.split_version(without, {"name": "x", "version": 5}) == ({"name": "x"}, 5)
    assert parsing.split_version(with_header, {"version": 5}) == ({}, 5)
    assert status_of(lambda: parsing.split_version(without, {"name": "x"})).status == 428
    assert status_of(lambda: parsing.split_version(with_header, {"version": 4})).status == 422


@pytest.mark.parametrize("version", ["x", 0, True, 1.5, [3]])
def test_a_body_version_must_be_a_positive_whole_number(version):
    problem = status_of(lambda: parsing.split_version(request(), {"version": version}))
    assert problem.status == 422 and list(problem.errors) == ["version"]


def test_a_query_string_becomes_a_dict_with_repeated_parameters_as_lists():
    args = MultiDict(
        [("q", " 华东 "), ("region", ""), ("tags", "a, b"), ("tags", "c"), ("limit", "10")]
    )

    assert parsing.query_dict(args) == {"q": " 华东 ", "tags": ["a, b", "c"], "limit": "10"}


def customer_query(schema, pairs):
    """What the customer service makes of a query string the gateway forwards."""
    return load(schema, parsing.query_dict(MultiDict(pairs)))


def test_the_customer_query_schema_reads_what_the_gateway_forwards():
    pairs = [
        ("q", " 华东 "),
        ("region", ""),
        ("kind", "individual"),
        ("department_id", "d-east"),
        ("tags", "a, b"),
        ("tags", "b"),
        ("tags", "c"),
        ("sort", "name"),
        ("limit", "10"),
    ]

    assert customer_query(CustomerQuerySchema(), pairs) == {
        "q": "华东",
        "kind": "individual",
        "department_id": "d-east",
        "tags": ["a", "b", "c"],
        "sort": "name",
        "limit": 10,
    }


@pytest.mark.parametrize(
    ("schema", "pairs", "field"),
    [
        (CustomerQuerySchema(), [("sort", "region")], "sort"),
        (CustomerQuerySchema(), [("limit", "x")], "limit"),
        (CustomerQuerySchema(), [("limit", "-1")], "limit"),
        (CustomerQuerySchema(), [("bogus", "1")], "bogus"),
        (CustomerQuerySchema(), [("kind", "robot")], "kind"),
        (CustomerFilterSchema(), [("sort", "name")], "sort"),
        (CustomerFilterSchema(), [("limit", "5")], "limit"),
    ],
)
def test_a_parameter_the_query_schema_does_not_take_is_named(schema, pairs, field):
    with pytest.raises(ValidationFailed) as caught:
        customer_query(schema, pairs)

    assert list(caught.value.details["errors"]) == [field]


@pytest.mark.parametrize(
    ("raw", "value"), [("true", True), ("1", True), ("no", False), (None, False)]
)
def test_flags(raw, value):
    args = {} if raw is None else {"allow_duplicate": raw}
    assert parsing.flag(args, "allow_duplicate") is value


def test_a_flag_that_is_neither_true_nor_false_is_a_field_error():
    problem = status_of(lambda: parsing.flag({"allow_duplicate": "maybe"}, "allow_duplicate"))
    assert problem.errors == {"allow_duplicate": ["must be true or false"]}


def test_json_body_reads_objects_only():
    good = request(
        method="POST", data=json.dumps({"name": "华东"}), content_type="application/json"
    )
    problem_json = request(method="POST", data=b"{}", content_type="application/merge-patch+json")
    array = request(method="POST", data=b"[]", content_type="application/json")
    broken = request(method="POST", data=b'{"a":', content_type="application/json")
    form = request(method="POST", data=b"a=1", content_type="application/x-www-form-urlencoded")

    assert parsing.json_body(good) == {"name": "华东"}
    assert parsing.json_body(problem_json) == {}
    assert status_of(lambda: parsing.json_body(array)).code == "invalid_json"
    assert "line 1" in status_of(lambda: parsing.json_body(broken)).detail
    assert status_of(lambda: parsing.json_body(form)).status == 415


def test_csv_text_from_body_with_bom_and_from_an_upload():
    text = "name\r\n华东机电\r\n"
    body = request(method="POST", data=("\ufeff" + text).encode(), content_type="text/csv")
    upload = request(
        method="POST",
        data={"file": (__import__("io").BytesIO(text.encode("gb18030")), "c.csv", "text/csv")},
    )

    assert parsing.csv_text(body) == text
    assert parsing.csv_text(upload) == text


def test_csv_charset_parameter_is_honoured():
    raw = "name\n华东\n".encode("utf-16")
    body = request(method="POST", data=raw, content_type="text/csv; charset=utf-16")

    assert parsing.csv_text(body) == "name\n华东\n"
    bogus = request(method="POST", data=b"x", content_type="text/csv; charset=klingon")
    assert status_of(lambda: parsing.csv_text(bogus)).code == "unknown_charset"


def test_decode_text_falls_back_to_gb18030_only_when_utf8_fails():
    assert parsing.decode_text("华东".encode()) == "华东"
    assert parsing.decode_text("华东".encode("gb18030")) == "华东"
    assert parsing.decode_text(b"\xef\xbb\xbfname") == "name"


def test_validation_reasons_never_quote_what_was_sent():
    from gateway.schemas import PasswordChangeSchema, TokenRequestSchema

    secret = "hunter2-" * 200
    cases = [
        (TokenRequestSchema(), {"username": "sales01", "password": secret}),
        (TokenRequestSchema(), {"username": secret, "password": ["hunter2"]}),
        (PasswordChangeSchema(), {"current_password": 123456, "new_password": secret}),
        (PasswordChangeSchema(), {"current_password": "hunter2", "new_password": ""}),
    ]
    for schema, body in cases:
        with pytest.raises(ValidationFailed) as caught:
            parsing.validated(
                schema,
                request(method="POST", data=json.dumps(body), content_type="application/json"),
            )
        text = json.dumps(caught.value.details) + caught.value.message
        assert "hunter2" not in text


def json_request(data, content_type="application/json"):
    return request(method="POST", data=data, content_type=content_type)


@pytest.mark.parametrize("depth", [parsing.MAX_JSON_DEPTH + 1, 1000, 100_000])
def test_json_nested_too_deeply_is_a_400_not_a_crash(depth):
    body = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    problem = status_of(lambda: parsing.json_body(json_request(body)))
    assert problem.status == 400 and problem.code == "invalid_json"
    assert "nests" in problem.detail


def test_json_nested_within_the_limit_is_read():
    depth = parsing.MAX_JSON_DEPTH - 1
    body = b'{"a":' + b"[" * depth + b"]" * depth + b"}"
    nested = parsing.json_body(json_request(body))["a"]
    for _ in range(depth - 1):
        (nested,) = nested
    assert nested == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"name": "\\ud800"}', "name"),
        (b'{"tags": ["ok", "x\\udfffy"]}', "tags.1"),
        (b'{"contact": {"remark": "a\\u0000b"}}', "contact.remark"),
        (b'{"a\\u0000": 1}', "a\x00"),
    ],
)
def test_text_no_database_can_hold_is_a_422_naming_the_member(body, field):
    problem = status_of(lambda: parsing.json_body(json_request(body)))
    assert problem.status == 422 and list(problem.errors) == [field]


@pytest.mark.parametrize("charset", ["iso-8859-1", "latin-1", "gb18030", "utf-16"])
def test_json_declared_in_a_charset_other_than_utf8_is_415(charset):
    body = json.dumps({"name": "华东"}, ensure_ascii=False).encode()
    problem = status_of(
        lambda: parsing.json_body(json_request(body, f"application/json; charset={charset}"))
    )
    assert problem.status == 415


def test_json_declared_utf8_or_ascii_is_read():
    body = json.dumps({"name": "华东"}, ensure_ascii=False).encode()
    for charset in ("utf-8", "UTF-8", "us-ascii"):
        read = parsing.json_body(json_request(body, f"application/json; charset={charset}"))
        assert read == {"name": "华东"}


def test_csv_declared_latin1_but_holding_utf8_is_read_as_utf8():
    raw = "name\n华东机电\n".encode()
    body = request(method="POST", data=raw, content_type="text/csv; charset=iso-8859-1")
    assert parsing.csv_text(body) == "name\n华东机电\n"
    latin = request(
        method="POST",
        data="name\nMüller\n".encode("latin-1"),
        content_type="text/csv; charset=iso-8859-1",
    )
    assert parsing.csv_text(latin) == "name\nMüller\n"


@pytest.mark.parametrize("value", ["华东\x00", "\x00", "\ud800"])
def test_query_values_no_database_can_compare_are_a_422(value):
    args = MultiDict([("q", value)])
    problem = status_of(lambda: parsing.query_dict(args))
    assert problem.status == 422 and list(problem.errors) == ["q"]
