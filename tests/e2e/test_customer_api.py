"""The org and customer services and the gateway as separate processes, driven over HTTP like a
front end: a salesperson (sales01) works on their own customers, a branch manager (branch.east)
merges and imports."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid

import pytest
import requests

from customer.domain.credit_code import make_credit_code
from devstack.stack import Suite

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    with Suite(tmp_path_factory.mktemp("e2e")) as running:
        yield running


@pytest.fixture(scope="module")
def api(suite):
    return suite.client("sales01")


@pytest.fixture(scope="module")
def manager(suite):
    return suite.client("branch.east")


def create(api, suite, **fields):
    body = {"name": "上海华东机电设备有限公司", "region": "华东/上海", **fields}
    response = api.post(suite.url("/api/customers"), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_every_route_needs_a_valid_token(suite):
    for path in ("/api/customers", "/api/customers/export", "/api/contacts/x"):
        response = requests.get(suite.url(path))
        assert response.status_code == 401
        assert response.headers["Content-Type"].startswith(PROBLEM)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    expired = suite.token("u-sales-01", ttl=1, now=time.time() - 3600)
    response = requests.get(
        suite.url("/api/customers"), headers={"Authorization": f"Bearer {expired}"}
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_create_with_chinese_data_then_read_it_back(api, suite):
    credit_code = make_credit_code("91310000MA1FL0001")
    created = create(
        api,
        suite,
        name="苏州精工轴承有限公司",
        short_name="精工轴承",
        category="A",
        industry="轴承",
        region="华东/江苏/苏州",
        phone="0512-6588 1234",
        credit_code=credit_code,
        tags=["重点客户"],
    )
    assert created["code"].startswith("C20")
    assert len(created["code"]) == 11
    assert created["owner_id"] == "u-sales-01"

    fetched = api.get(suite.url(f"/api/customers/{created['id']}"))
    assert fetched.status_code == 200
    assert fetched.json()["name"] == "苏州精工轴承有限公司"
    assert fetched.json()["credit_code"] == credit_code
    assert fetched.headers["ETag"].strip('W/"') == str(created["version"])


def test_duplicate_is_a_conflict_listing_candidates_unless_forced(api, suite):
    first = create(api, suite, name="杭州鑫达液压机械有限公司", phone="13905710001")

    response = api.post(
        suite.url("/api/customers"),
        json={"name": "杭州鑫达液压机械股份有限公司", "region": "华东/浙江"},
    )
    assert response.status_code == 409
    assert response.headers["Content-Type"].startswith(PROBLEM)
    candidates = response.json()["candidates"]
    assert first["id"] in [candidate["id"] for candidate in candidates]

    forced = api.post(
        suite.url("/api/customers?allow_duplicate=true"),
        json={"name": "杭州鑫达液压机械股份有限公司", "region": "华东/浙江"},
    )
    assert forced.status_code == 201


def test_search_finds_partial_chinese_names_and_filters(api, suite):
    target = create(api, suite, name="华东五金工具贸易有限公司", category="VIP", tags=["五金"])
    create(api, suite, name="广州南方阀门有限公司", region="华南/广东/广州", category="VIP")

    found = api.get(suite.url("/api/customers"), params={"q": "华东"}).json()["items"]
    assert target["id"] in [item["id"] for item in found]
    assert all("华东" in item["name"] + (item.get("short_name") or "") for item in found)

    south = api.get(suite.url("/api/customers"), params={"region": "华南", "category": "VIP"})
    assert [item["name"] for item in south.json()["items"]] == ["广州南方阀门有限公司"]

    by_code = api.get(suite.url("/api/customers"), params={"q": target["code"]}).json()
    assert [item["id"] for item in by_code["items"]] == [target["id"]]


def test_pages_walk_the_whole_list_once(api, suite):
    names = ["北辰电气", "滨海轴承", "津南阀门", "武清五金", "宝坻液压", "静海工具", "蓟州仪表"]
    for name in names:
        create(api, suite, name=f"天津{name}有限公司", region="华北/天津")
    seen, cursor = [], None
    while True:
        params = {"region": "华北/天津", "limit": 3, "sort": "name"}
        if cursor:
            params["cursor"] = cursor
        page = api.get(suite.url("/api/customers"), params=params).json()
        seen += [item["name"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 7 == len(set(seen))
    assert seen == sorted(seen)


def test_update_keeps_history_and_rejects_a_stale_version(api, suite):
    customer = create(api, suite, name="南京金陵自动化有限公司", region="华东/江苏/南京")
    url = suite.url(f"/api/customers/{customer['id']}")

    updated = api.patch(
        url, json={"category": "B"}, headers={"If-Match": f'"{customer["version"]}"'}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == customer["version"] + 1

    stale = api.patch(url, json={"category": "C"}, headers={"If-Match": f'"{customer["version"]}"'})
    assert stale.status_code == 409
    assert stale.json()["current_version"] == customer["version"] + 1

    missing = api.patch(url, json={"category": "C"})
    assert missing.status_code == 428

    history = api.get(url + "/history").json()["items"]
    change = next(item for item in history if item["field"] == "category")
    assert (change["old"], change["new"], change["actor_id"]) == (None, "B", "u-sales-01")


def test_bad_input_is_a_problem_with_field_reasons_and_nothing_is_stored(api, suite):
    response = api.post(
        suite.url("/api/customers"),
        json={"name": "坏数据有限公司", "credit_code": "91310000MA1FL00010", "colour": "red"},
    )
    assert response.status_code == 422
    assert response.headers["Content-Type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == 422
    assert problem["code"] == "validation_failed"
    assert set(problem["errors"]) >= {"credit_code", "colour"}
    assert problem["request_id"] == response.headers["X-Request-ID"]
    listed = api.get(suite.url("/api/customers"), params={"q": "坏数据"}).json()
    assert listed["items"] == []

    not_json = api.post(
        suite.url("/api/customers"), data="{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    unknown = api.get(suite.url("/api/customers/00000000-0000-0000-0000-000000000000"))
    assert unknown.status_code == 404


def test_contacts_relationships_and_care_records(api, suite):
    customer = create(api, suite, name="青岛海川阀门有限公司", region="华东/山东/青岛")
    partner = create(api, suite, name="烟台恒力液压件有限公司", region="华东/山东/烟台")
    base = suite.url(f"/api/customers/{customer['id']}")

    contact = api.post(
        base + "/contacts",
        json={
            "name": "王建国",
            "title": "采购经理",
            "mobile": "+86 139 0532 0001",
            "is_primary": True,
        },
    )
    assert contact.status_code == 201, contact.text
    assert contact.json()["mobile"] == "13905320001"
    bad_mobile = api.post(base + "/contacts", json={"name": "李四", "mobile": "12345"})
    assert bad_mobile.status_code == 422
    assert "mobile" in bad_mobile.json()["errors"]

    link = api.post(
        base + "/relationships", json={"related_customer_id": partner["id"], "kind": "partner"}
    )
    assert link.status_code == 201, link.text
    care = api.post(
        base + "/care", json={"kind": "festival", "date": "2026-09-15", "note": "中秋礼盒"}
    )
    assert care.status_code == 201, care.text

    by_contact = api.get(suite.url("/api/customers"), params={"q": "王建国"}).json()["items"]
    assert [item["id"] for item in by_contact] == [customer["id"]]
    assert len(api.get(base + "/relationships").json()["items"]) == 1
    assert api.get(base + "/care").json()["items"][0]["note"] == "中秋礼盒"


def test_merge_moves_contacts_to_the_survivor(manager, suite):
    survivor = create(manager, suite, name="成都蜀达机电有限公司", region="西南/四川/成都")
    merged = manager.post(
        suite.url("/api/customers?allow_duplicate=true"),
        json={
            "name": "成都蜀达机电设备有限公司",
            "region": "西南/四川/成都",
            "phone": "028-8765 4321",
        },
    ).json()
    manager.post(suite.url(f"/api/customers/{merged['id']}/contacts"), json={"name": "赵敏"})

    response = manager.post(
        suite.url("/api/customers/merge"),
        json={"survivor_id": survivor["id"], "merged_id": merged["id"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["phone"], "the survivor fills its empty phone from the merged record"

    contacts = manager.get(suite.url(f"/api/customers/{survivor['id']}/contacts")).json()["items"]
    assert [contact["name"] for contact in contacts] == ["赵敏"]
    again = manager.post(
        suite.url("/api/customers/merge"),
        json={"survivor_id": survivor["id"], "merged_id": merged["id"]},
    )
    assert again.status_code in (404, 409)


def test_merge_and_import_need_their_permissions(api, suite):
    ids = {"survivor_id": str(uuid.uuid4()), "merged_id": str(uuid.uuid4())}
    merge = api.post(suite.url("/api/customers/merge"), json=ids)
    assert merge.status_code == 403
    assert merge.json()["permission"] == "customer:merge"
    imported = api.post(
        suite.url("/api/customers/import"),
        data="name\n某某有限公司\n".encode(),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert imported.status_code == 403


def test_import_reports_bad_rows_and_keeps_the_good_ones_then_export(manager, suite):
    rows = [
        ["name", "region", "phone", "category", "credit_code"],
        ["武汉江汉工具有限公司", "华中/湖北/武汉", "027-8888 0001", "B", ""],
        ["坏行电气有限公司", "华中/湖北/武汉", "not-a-phone", "Z", ""],
        ["长沙湘江轴承有限公司", "华中/湖南/长沙", "", "A", make_credit_code("91430100MA4L00001")],
    ]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    response = manager.post(
        suite.url("/api/customers/import"),
        data=text.getvalue().encode("utf-8"),
        headers={"Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["created"] == 2
    assert [error["row"] for error in report["errors"]] == [3]
    assert {"phone", "category"} <= set(report["errors"][0]["errors"])

    exported = manager.get(suite.url("/api/customers/export"), params={"region": "华中"})
    assert exported.status_code == 200
    assert exported.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in exported.headers["Content-Disposition"]
    names = [
        row["name"] for row in csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig")))
    ]
    assert sorted(names) == ["武汉江汉工具有限公司", "长沙湘江轴承有限公司"]


def test_request_id_is_echoed_and_reaches_the_service_logs(api, suite):
    response = api.get(
        suite.url("/api/customers/00000000-0000-0000-0000-000000000000"),
        headers={"X-Request-ID": "e2e-trace-0001"},
    )
    assert response.headers["X-Request-ID"] == "e2e-trace-0001"
    assert response.json()["request_id"] == "e2e-trace-0001"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = (suite.workdir / "customer.log").read_text().splitlines()
        tagged = [json.loads(line) for line in lines if "e2e-trace-0001" in line]
        if tagged:
            break
        time.sleep(0.1)
    assert tagged and all(entry["request_id"] == "e2e-trace-0001" for entry in tagged)


def test_health_ready_and_openapi(suite):
    assert requests.get(suite.url("/health")).json()["status"] == "ok"
    assert requests.get(suite.url("/ready")).status_code == 200
    document = requests.get(suite.url("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert "/api/customers" in document["paths"]
    assert "credit_code" in json.dumps(document["components"]["schemas"])


def test_changes_leave_as_events_on_the_customer_exchange(api, suite):
    from kombu import Connection, Exchange, Queue

    with Connection(suite.config()["AMQP_URI"]) as connection:
        queue = Queue(
            "e2e-watch-customer-events",
            Exchange("customer.events", type="topic", durable=True),
            routing_key="#",
            channel=connection.channel(),
            auto_delete=True,
        )
        queue.declare()
        created = create(api, suite, name="重庆渝江电缆有限公司", region="西南/重庆")
        deadline = time.monotonic() + 10
        received = []
        while time.monotonic() < deadline and not received:
            message = queue.get(no_ack=True)
            if message is None:
                time.sleep(0.05)
            elif message.payload["type"] == "customer_created":
                received.append(message.payload)
    envelope = received[0]
    assert envelope["data"]["customer"]["id"] == created["id"]
    assert envelope["actor_id"] == "u-sales-01"
    assert envelope["source"] == "customer"
