"""The gateway's HTTP behaviour: tokens, problem+json, versions, queries, CSV, each route."""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import jwt
import pytest

from crm_common.identity import mint, private_jwk
from crm_common.scope import Grant
from tests.integration.standins import (
    CUSTOMER_ID,
    USER,
    StandInCustomer,
    access_token,
    gateway_config,
    problem_of,
    start_gateway,
)
from tests.support.tokens import KEYS, TRUST, TestKeys, user_token


@pytest.fixture
def api(rabbit_config, runner_factory):
    return start_gateway(runner_factory, gateway_config(rabbit_config), StandInCustomer)


def calls_to(method):
    return [call for call in StandInCustomer.calls if call["method"] == method]


# --- bearer tokens -------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def unsigned_token() -> str:
    claims = claims_of(access_token())
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def tampered_token() -> str:
    header, payload, signature = access_token().split(".")
    claims = claims_of(access_token())
    claims["permissions"] = [*claims["permissions"], "org:admin"]
    return f"{header}.{_b64(claims)}.{signature}"


def signed(**changes) -> str:
    """A token signed with org's key whose claims are changed (None removes a claim)."""
    claims = {**claims_of(access_token()), **changes}
    claims = {key: value for key, value in claims.items() if value is not None}
    kid, key = TRUST.signing_key("org")
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})


def other_trust(**changes) -> object:
    return dataclasses.replace(TRUST, **changes)


def signed_by(service: str) -> str:
    """A user's token signed with the key of a service that may not sign user tokens."""
    reserved = ("iss", "aud", "sub", "iat", "exp")
    claims = {k: v for k, v in claims_of(access_token()).items() if k not in reserved}
    return mint(TRUST, service, USER, claims=claims)


def public_key_as_hmac_secret() -> str:
    """The classic confusion: HS256 keyed with the verifier's public key."""
    secret = private_jwk("org.test", KEYS.private["org.test"])["x"]
    return jwt.encode(claims_of(access_token()), secret, algorithm="HS256")


BAD_TOKENS = {
    "expired": lambda: access_token(ttl=60, now=time.time() - 3600),
    "tampered": tampered_token,
    "alg none": unsigned_token,
    "wrong audience": lambda: user_token(USER, trust=other_trust(audience="another-api")),
    "wrong issuer": lambda: user_token(USER, trust=other_trust(issuer="someone-else")),
    "unknown key": lambda: user_token(USER, trust=TestKeys(("org",), "guessed").trust()),
    "signed by a service's key": lambda: signed_by("customer"),
    "HS512": lambda: jwt.encode(claims_of(access_token()), "x" * 64, algorithm="HS512"),
    "HS256 keyed with the public key": public_key_as_hmac_secret,
    "garbage": lambda: "not.a.jwt",
    "without sub": lambda: signed(sub=None),
    "blank sub": lambda: signed(sub=" "),
    "malformed grants": lambda: signed(grants=[{"owner": "everyone"}]),
    "grants not a list": lambda: signed(grants={"owner": "self"}),
    "without grants": lambda: signed(grants=None),
    "without permissions": lambda: signed(permissions=None),
    "without ver": lambda: signed(ver=None),
    "without sid": lambda: signed(sid=None),
    "foundation token": lambda: mint(TRUST, "org", USER),
    "a service's own token": lambda: mint(TRUST, "customer", "service:customer"),
}


def test_no_token_is_401_with_a_bearer_challenge(api):
    response = api.get("/api/customers", auth=False)

    problem = problem_of(response, 401)
    assert problem["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="crm"'
    assert StandInCustomer.calls == []


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_a_token_that_does_not_verify_is_401_and_never_reaches_the_service(api, kind):
    response = api.get(f"/api/customers/{CUSTOMER_ID}", token=BAD_TOKENS[kind]())

    problem = problem_of(response, 401)
    assert problem["code"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer realm="crm", error="invalid_token"'
    )
    assert StandInCustomer.calls == []


def test_the_full_principal_of_the_token_reaches_the_service(api):
    token = access_token(
        department_id="d-east",
        roles=["sales_manager"],
        permissions=["customer:read", "customer:merge"],
        grants=[{"owner": "self"}, {"departments": ["d-east", "d-east-sh"], "categories": ["A"]}],
    )

    assert api.get(f"/api/customers/{CUSTOMER_ID}", token=token).status_code == 200

    [principal] = StandInCustomer.principals
    assert principal.user_id == USER
    assert principal.department_id == "d-east"
    assert principal.roles == ("sales_manager",)
    assert principal.permissions == ("customer:read", "customer:merge")
    assert principal.grants == (
        Grant(owner_self=True),
        Grant(departments=frozenset({"d-east", "d-east-sh"}), categories=frozenset({"A"})),
    )


def test_a_missing_permission_is_the_services_403(api):
    token = access_token(permissions=["customer:read"])

    read = api.get(f"/api/customers/{CUSTOMER_ID}", token=token)
    write = api.post("/api/customers", json={"name": "华南五金"}, token=token)

    assert read.status_code == 200
    problem = problem_of(write, 403)
    assert problem["permission"] == "customer:write"


def test_a_basic_credential_is_not_a_bearer_token(api):
    response = api.get(
        "/api/customers", auth=False, headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )

    problem_of(response, 401)
    assert 'error="invalid_request"' in response.headers["WWW-Authenticate"]


def test_expiry_is_reported_as_such(api):
    response = api.get("/api/customers", token=BAD_TOKENS["expired"]())

    assert "expired" in problem_of(response, 401)["detail"]


def test_openapi_document_needs_no_token(api):
    assert api.get("/api/openapi.json", auth=False).status_code == 200


# --- problem+json for each kind of failure -------------------------------------------------


def test_not_found_carries_the_services_details(api):
    problem = problem_of(api.get("/api/customers/missing"), 404)

    assert problem["code"] == "not_found"
    assert problem["title"] == "Not found"
    assert problem["resource"] == "customer"
    assert problem["id"] == "missing"


@pytest.mark.parametrize(
    ("customer_id", "status", "code", "header"),
    [
        ("missing", 404, "not_found", None),
        ("hidden", 403, "forbidden", None),
        ("anonymous", 401, "unauthenticated", "WWW-Authenticate"),
        ("degraded", 503, "unavailable", "Retry-After"),
        ("crash", 500, "internal_error", None),
    ],
)
def test_each_service_error_maps_to_its_status_and_code(api, customer_id, status, code, header):
    response = api.get(f"/api/customers/{customer_id}")

    problem = problem_of(response, status)
    assert problem["code"] == code
    if header:
        assert response.headers[header]


def test_forbidden_keeps_the_services_explanation(api):
    problem = problem_of(api.get("/api/customers/hidden"), 403)

    assert "department" in problem["detail"]


def test_a_services_own_unavailability_keeps_its_details(api):
    problem = problem_of(api.get("/api/customers/degraded"), 503)

    assert problem["dependency"] == "db"


def test_validation_errors_list_reasons_per_field(api):
    problem = problem_of(api.post("/api/customers", json={"region": "华东"}), 422)

    assert problem["code"] == "validation_failed"
    assert problem["errors"] == {"name": ["Missing data for required field."]}


def test_a_duplicate_lists_its_candidates_and_can_be_overridden(api):
    conflict = problem_of(api.post("/api/customers", json={"name": "华东机电"}), 409)
    created = api.post("/api/customers?allow_duplicate=true", json={"name": "华东机电"})

    assert conflict["code"] == "conflict"
    assert conflict["reason"] == "duplicate_customer"
    [candidate] = conflict["candidates"]
    assert candidate["code"] == "C2026000001"
    assert candidate["score"] == 0.92
    assert created.status_code == 201
    assert [call["allow_duplicate"] for call in calls_to("create_customer")] == [False, True]


def test_an_unexpected_service_error_is_500_without_internals(api):
    response = api.get("/api/customers/crash")

    problem = problem_of(response, 500)
    assert problem["code"] == "internal_error"
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"name": ', "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "invalid_json"),
        (b"\xff\xfe{}", "application/json", 400, "invalid_json"),
        (b"name=x", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_bodies_that_are_not_a_json_object(api, body, content_type, status, code):
    response = api.post("/api/customers", data=body, headers={"Content-Type": content_type})

    assert problem_of(response, status)["code"] == code
    assert calls_to("create_customer") == []


def test_unknown_route_is_a_404_problem(api):
    problem = problem_of(api.get("/api/nothing-here"), 404)

    assert problem["code"] == "not_found"


def test_wrong_method_is_a_405_problem_with_allow(api):
    response = api.request("PUT", f"/api/customers/{CUSTOMER_ID}", json={})

    assert problem_of(response, 405)["code"] == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "PATCH"}


def test_a_body_over_the_limit_is_413(rabbit_config, runner_factory):
    small = start_gateway(
        runner_factory, gateway_config(rabbit_config, MAX_BODY_BYTES=1024), StandInCustomer
    )

    response = small.post("/api/customers", json={"name": "x" * 5000})

    assert problem_of(response, 413)["code"] == "payload_too_large"


# --- versions: ETag and If-Match -----------------------------------------------------------


def test_a_single_record_carries_its_version_as_etag(api):
    assert api.get(f"/api/customers/{CUSTOMER_ID}").headers["ETag"] == '"3"'
    assert api.get("/api/contacts/ct-9").headers["ETag"] == '"7"'


@pytest.mark.parametrize("if_match", ['"3"', 'W/"3"'])
def test_patch_takes_the_version_from_if_match(api, if_match):
    response = api.patch(
        f"/api/customers/{CUSTOMER_ID}", json={"region": "华南"}, headers={"If-Match": if_match}
    )

    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"4"'
    [call] = calls_to("update_customer")
    assert call["expected_version"] == 3
    assert call["changes"] == {"region": "华南"}


def test_patch_takes_the_version_from_the_body(api):
    response = api.patch(f"/api/customers/{CUSTOMER_ID}", json={"region": "华南", "version": 3})

    assert response.status_code == 200
    [call] = calls_to("update_customer")
    assert call["changes"] == {"region": "华南"}
    assert call["expected_version"] == 3


def test_patch_without_a_version_is_428(api):
    response = api.patch(f"/api/customers/{CUSTOMER_ID}", json={"region": "华南"})

    assert problem_of(response, 428)["code"] == "precondition_required"
    assert calls_to("update_customer") == []


def test_a_stale_version_is_409_with_the_current_one(api):
    response = api.patch(
        f"/api/customers/{CUSTOMER_ID}", json={"region": "华南"}, headers={"If-Match": '"2"'}
    )

    problem = problem_of(response, 409)
    assert problem["reason"] == "stale_version"
    assert problem["current_version"] == 3


def test_if_match_and_body_version_must_agree(api):
    response = api.patch(
        f"/api/customers/{CUSTOMER_ID}", json={"version": 2}, headers={"If-Match": '"3"'}
    )

    assert problem_of(response, 422)["errors"] == {
        "version": ["differs from the version in If-Match"]
    }


def test_a_malformed_if_match_is_400(api):
    response = api.patch(f"/api/customers/{CUSTOMER_ID}", json={}, headers={"If-Match": "*"})

    assert problem_of(response, 400)["code"] == "invalid_if_match"


def test_contacts_are_patched_the_same_way(api):
    response = api.patch(
        "/api/contacts/ct-1", json={"title": "采购经理"}, headers={"If-Match": '"7"'}
    )

    assert response.status_code == 200
    assert response.headers["ETag"] == '"8"'
    assert calls_to("update_contact")[0]["expected_version"] == 7


# --- lists and queries ---------------------------------------------------------------------


def test_list_passes_filters_tags_sort_and_paging(api):
    response = api.get(
        "/api/customers",
        params=[
            ("q", "华东"),
            ("status", "formal"),
            ("tags", "vip,重点"),
            ("tags", "华东"),
            ("sort", "-created_at"),
            ("limit", "20"),
            ("cursor", "abc"),
            ("region", ""),
        ],
    )

    assert response.status_code == 200
    assert response.json()["next_cursor"] == "next-page"
    [call] = calls_to("list_customers")
    assert call["query"] == {
        "q": "华东",
        "status": "formal",
        "tags": ["vip,重点", "华东"],
        "sort": "-created_at",
        "limit": "20",
        "cursor": "abc",
    }


@pytest.mark.parametrize("params", [{"kind": "individual"}, {"department_id": "d-east"}])
def test_every_filter_the_service_takes_reaches_it(api, params):
    for path, method in (
        ("/api/customers", "list_customers"),
        ("/api/customers/count", "count_customers"),
        ("/api/customers/summary", "summarize_customers"),
        ("/api/customers/export", "export_customers"),
    ):
        assert api.get(path, params=params).status_code == 200, path
        assert calls_to(method)[-1]["query"] == params


def test_a_parameter_the_service_does_not_take_is_a_422_naming_it(api):
    for path in ("/api/customers", "/api/customers/count", "/api/customers/export"):
        problem = problem_of(api.get(path, params={"bogus": "1", "q": "华东"}), 422)

        assert problem["errors"] == {"bogus": ["Unknown field."]}
    assert StandInCustomer.calls == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"sort": "owner"}, "sort"), ({"limit": "many"}, "limit"), ({"limit": "0"}, "limit")],
)
def test_bad_query_parameters_are_field_errors(api, params, field):
    problem = problem_of(api.get("/api/customers", params=params), 422)

    assert list(problem["errors"]) == [field]
    assert calls_to("list_customers") == []


def test_count_and_summary_take_the_list_filters_but_not_paging_or_sort(api):
    params = [("region", "华东"), ("tags", "vip"), ("q", "机电")]

    count = api.get("/api/customers/count", params=params)
    summary = api.get("/api/customers/summary", params=params)
    sorted_count = api.get("/api/customers/count", params=[*params, ("sort", "name")])
    paged_summary = api.get("/api/customers/summary", params=[*params, ("limit", "5")])

    assert count.status_code == 200 and count.json() == {"count": 42}
    assert summary.status_code == 200
    assert summary.json()["by_category"] == {"A": 12, "VIP": 3, "none": 27}
    expected = {"region": "华东", "tags": "vip", "q": "机电"}
    assert calls_to("count_customers")[0]["query"] == expected
    assert calls_to("summarize_customers")[0]["query"] == expected
    assert problem_of(sorted_count, 422)["errors"] == {"sort": ["Unknown field."]}
    assert problem_of(paged_summary, 422)["errors"] == {"limit": ["Unknown field."]}
    assert calls_to("get_customer") == []


def test_history_pages_through_changes(api):
    response = api.get(f"/api/customers/{CUSTOMER_ID}/history?limit=5&cursor=c1")

    assert response.json()["items"][0]["field"] == "region"
    [call] = calls_to("customer_history")
    assert (call["cursor"], call["limit"]) == ("c1", 5)


# --- the other routes, one RPC each --------------------------------------------------------


def test_create_answers_201_with_location_and_etag(api):
    response = api.post("/api/customers", json={"name": "华南五金", "region": "华南"})

    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == f"/api/customers/{body['id']}"
    assert response.headers["ETag"] == '"1"'
    assert calls_to("create_customer")[0]["data"] == {"name": "华南五金", "region": "华南"}


def test_contacts_relationships_and_care(api):
    base = f"/api/customers/{CUSTOMER_ID}"
    contacts = api.get(f"{base}/contacts")
    contact = api.post(f"{base}/contacts", json={"name": "李娜", "mobile": "13800138000"})
    bad_contact = api.post(f"{base}/contacts", json={"name": "李娜", "mobile": "999"})
    relationships = api.get(f"{base}/relationships")
    related = api.post(
        f"{base}/relationships", json={"related_customer_id": "c-3", "kind": "parent"}
    )
    removed = api.delete(f"{base}/relationships/rel-1")
    not_there = api.delete(f"{base}/relationships/missing")
    care = api.get(f"{base}/care")
    cared = api.post(f"{base}/care", json={"kind": "gift", "date": "2026-09-10"})

    assert [(c["id"], c["name"]) for c in contacts.json()["items"]] == [("ct-1", "张伟")]
    assert contact.status_code == 201
    assert contact.headers["Location"] == "/api/contacts/ct-2"
    assert problem_of(bad_contact, 422)["errors"] == {"mobile": ["not a mainland China mobile"]}
    assert relationships.json()["items"][0]["kind"] == "partner"
    assert related.status_code == 201 and related.json()["kind"] == "parent"
    assert removed.status_code == 204 and removed.content == b""
    assert problem_of(not_there, 404)["resource"] == "relationship"
    assert care.json()["items"][0]["kind"] == "festival"
    assert cared.status_code == 201 and cared.json()["kind"] == "gift"
    assert calls_to("remove_relationship")[0]["relationship_id"] == "rel-1"
    assert {call["principal"] for call in StandInCustomer.calls} == {USER}


def test_merge_validates_its_body_then_merges(api):
    invalid = api.post("/api/customers/merge", json={"survivor_id": "a"})
    merged = api.post("/api/customers/merge", json={"survivor_id": "a", "merged_id": "b"})

    assert problem_of(invalid, 422)["errors"] == {"merged_id": ["Missing data for required field."]}
    assert merged.status_code == 200
    assert merged.json()["id"] == "a"
    assert calls_to("merge_customers") == [
        {
            "method": "merge_customers",
            "principal": USER,
            "request_id": merged.headers["X-Request-ID"],
            "survivor_id": "a",
            "merged_id": "b",
        }
    ]


# --- CSV -----------------------------------------------------------------------------------

CSV = "name,region\r\n华东机电,华东\r\n,华北\r\n"


def test_import_reads_utf8_csv_with_a_bom(api):
    response = api.post(
        "/api/customers/import",
        data=("\ufeff" + CSV).encode("utf-8"),
        headers={"Content-Type": "text/csv"},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "errors": [{"row": 3, "errors": {"name": ["required"]}}],
    }
    assert calls_to("import_customers")[0]["csv_text"] == CSV


def test_import_accepts_a_multipart_upload_and_gb18030(api):
    upload = api.post(
        "/api/customers/import", files={"file": ("customers.csv", CSV.encode("utf-8"), "text/csv")}
    )
    from_excel = api.post(
        "/api/customers/import", data=CSV.encode("gb18030"), headers={"Content-Type": "text/csv"}
    )

    assert upload.status_code == 200 and from_excel.status_code == 200
    assert [call["csv_text"] for call in calls_to("import_customers")] == [CSV, CSV]


def test_import_refuses_an_empty_or_json_body(api):
    empty = api.post("/api/customers/import", data=b"", headers={"Content-Type": "text/csv"})
    as_json = api.post("/api/customers/import", json={"rows": []})

    assert problem_of(empty, 400)["code"] == "empty_csv"
    assert problem_of(as_json, 415)["code"] == "unsupported_media_type"


def test_export_is_a_csv_attachment(api):
    response = api.get("/api/customers/export?region=华东&tags=vip")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="customers-')
    assert response.content.startswith(b"\xef\xbb\xbf")
    assert "华东机电设备有限公司" in response.content.decode("utf-8-sig")
    assert calls_to("export_customers")[0]["query"] == {"region": "华东", "tags": "vip"}
