from prometheus_client import REGISTRY
from sqlalchemy import create_engine

from crm_common import metrics
from crm_common.db import SessionScope
from crm_common.errors import NotFound
from crm_common.outbox import OutboxRelay, OutboxWriter
from tests.unit.common.models import Base, OutboxMessage


def test_outbox_backlog_and_age_are_read_at_scrape_time(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'notes.db'}")
    Base.metadata.create_all(engine)
    relay = OutboxRelay(engine, OutboxMessage, "amqp://guest:guest@localhost:5672/", "notes")
    metrics.watch_outbox("notes", relay.backlog)
    labels = {"service": "notes"}
    assert REGISTRY.get_sample_value("crm_outbox_backlog", labels) == 0
    assert REGISTRY.get_sample_value("crm_outbox_oldest_unsent_age_seconds", labels) == 0

    with SessionScope(engine).session() as session:
        writer = OutboxWriter(OutboxMessage, "notes")
        writer.add(session, "note_added", {"title": "a"})
        writer.add(session, "note_added", {"title": "b"})

    assert REGISTRY.get_sample_value("crm_outbox_backlog", labels) == 2
    assert REGISTRY.get_sample_value("crm_outbox_oldest_unsent_age_seconds", labels) > 0


def test_the_pool_in_use_is_read_at_scrape_time(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    metrics.watch_pool("pooled", engine)
    with engine.connect():
        assert (
            REGISTRY.get_sample_value("crm_db_pool_connections_in_use", {"service": "pooled"}) == 1
        )
    assert REGISTRY.get_sample_value("crm_db_pool_connections_in_use", {"service": "pooled"}) == 0


def test_http_requests_are_counted_by_route_template_and_status():
    labels = {"method": "GET", "route": "/api/customers/{id}", "status": "404"}
    before = REGISTRY.get_sample_value("crm_http_requests_total", labels) or 0

    metrics.observe_http("GET", "/api/customers/{id}", 404, 0.012)

    assert REGISTRY.get_sample_value("crm_http_requests_total", labels) == before + 1
    timing = {"method": "GET", "route": "/api/customers/{id}"}
    assert REGISTRY.get_sample_value("crm_http_request_duration_seconds_count", timing) >= 1


def test_an_outcome_is_ok_an_expected_error_code_or_error():
    assert metrics.outcome_of(None) == "ok"
    assert metrics.outcome_of(NotFound.of("customer", 1)) == "not_found"
    assert metrics.outcome_of(RuntimeError("boom")) == "error"


def test_no_metrics_port_means_no_server():
    assert metrics.metrics_port({}) is None
    assert metrics.metrics_port({"METRICS_PORT": ""}) is None
    assert metrics.metrics_port({"METRICS_PORT": "0"}) is None
    assert metrics.metrics_port({"METRICS_PORT": "9101"}) == 9101
