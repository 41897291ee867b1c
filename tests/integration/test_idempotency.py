"""Idempotency-Key on the real broker and PostgreSQL: the gateway in front of the real customer
service. A repeat gets the first answer and writes nothing; another body with the key is a 422;
a repeat while the first runs is a 409; a write committed after its client gave up (504) is
answered, on retry, from its stored answer."""

from __future__ import annotations

import threading
import uuid

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import create_engine, func, select, text

from crm_common.idempotency import IDEMPOTENCY_KEY
from crm_common.migrations import upgrade
from customer.models import Customer, IdempotencyRecord
from customer.service import CustomerService
from tests.integration.standins import gateway_config, problem_of, start_gateway
from tests.support.polling import eventually
from tests.support.tokens import context_of, user_token

pytestmark = pytest.mark.postgres


@pytest.fixture
def stack(pg_uri, rabbit_config, runner_factory):
    upgrade("customer", pg_uri)
    config = gateway_config(
        rabbit_config, RPC_TIMEOUT=2, DB_URIS={"customer": pg_uri}, OUTBOX_POLL_SECONDS=0.2
    )
    api = start_gateway(runner_factory, config, CustomerService)
    engine = create_engine(pg_uri)
    yield api, engine, config
    engine.dispose()


def count(engine, where) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Customer).where(where)).scalar()


def create(api, body, key):
    return api.post("/api/customers", json=body, headers={"Idempotency-Key": key})


class TableLock:
    """Holds the customers table locked in a transaction of its own until released."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.release = threading.Event()
        self.locked = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("LOCK TABLE customers IN EXCLUSIVE MODE"))
            self.locked.set()
            self.release.wait(30)

    def __enter__(self) -> TableLock:
        self.thread.start()
        assert self.locked.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(10)

    def someone_waits(self) -> bool:
        with self.engine.connect() as connection:
            waiting = connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            ).scalar()
        return bool(waiting)


def test_a_repeated_create_gets_the_same_answer_and_makes_one_customer(stack):
    api, engine, _ = stack
    body = {"name": "苏州精工轴承有限公司", "phone": "0512-6523 8899"}
    first = create(api, body, "key-1")
    again = create(api, body, "key-1")
    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(engine, Customer.name == body["name"]) == 1


def test_the_key_with_another_body_is_a_422(stack):
    api, engine, _ = stack
    assert create(api, {"name": "无锡华光机械有限公司"}, "key-2").status_code == 201
    problem = problem_of(create(api, {"name": "无锡华光机械股份公司"}, "key-2"), 422)
    assert "Idempotency-Key" in problem["detail"]
    assert count(engine, Customer.name.like("无锡华光%")) == 1


def test_a_malformed_key_is_a_422_and_writes_nothing(stack):
    api, engine, _ = stack
    problem = problem_of(create(api, {"name": "常州恒立电机有限公司"}, "with space"), 422)
    assert "Idempotency-Key" in problem["errors"]
    assert count(engine, Customer.name == "常州恒立电机有限公司") == 0


def test_a_repeat_while_the_first_still_runs_is_a_409(stack):
    api, engine, _ = stack
    body = {"name": "南通中远船舶配件有限公司"}
    with TableLock(engine) as lock:
        first = eventlet.spawn(create, api, body, "key-3")
        eventually(lock.someone_waits, timeout=5, what="the first create waits on the lock")
        problem = problem_of(create(api, body, "key-3"), 409)
        assert "still being processed" in problem["detail"]
    assert first.wait().status_code == 201
    replay = create(api, body, "key-3")
    assert replay.status_code == 201 and replay.headers["Idempotent-Replayed"] == "true"
    assert count(engine, Customer.name == body["name"]) == 1


def test_a_write_committed_after_its_504_is_answered_from_the_stored_answer(stack):
    api, engine, _ = stack
    body = {"name": "扬州通宇液压机械有限公司"}
    with TableLock(engine) as lock:
        timed_out = eventlet.spawn(create, api, body, "key-4")
        eventually(lock.someone_waits, timeout=5, what="the create waits on the lock")
        assert timed_out.wait().status_code == 504
    eventually(
        lambda: count(engine, Customer.name == body["name"]) == 1,
        timeout=10,
        what="the late write committed",
    )
    retry = create(api, body, "key-4")
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["name"] == body["name"]
    assert count(engine, Customer.name == body["name"]) == 1


def test_calling_the_service_twice_with_the_same_context_data_writes_once(stack):
    _, engine, config = stack
    context = {**context_of(user_token()), IDEMPOTENCY_KEY: str(uuid.uuid4())}
    with ServiceRpcProxy("customer", config, context_data=context, timeout=10) as customer:
        first = customer.create_customer({"name": "镇江大全电气有限公司"})
        second = customer.create_customer({"name": "镇江大全电气有限公司"})
    assert first["idempotency"]["replayed"] is False
    assert second["idempotency"]["replayed"] is True
    assert second["result"] == first["result"]
    assert count(engine, Customer.name == "镇江大全电气有限公司") == 1
    with engine.connect() as connection:
        stored = connection.execute(select(IdempotencyRecord.operation)).scalars().all()
    assert stored == ["customer.create_customer"]
