"""Metrics scraped over HTTP from METRICS_PORT while the consumer and RPCs work."""

from __future__ import annotations

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client.parser import text_string_to_metric_families

from crm_common.context import Principal
from crm_common.errors import Forbidden
from tests.support.polling import eventually
from tests.support.tokens import context_of

from .event_ledger import (
    ADMIN,
    FAILURES,
    HANDLER_QUEUE,
    LedgerService,
    customer_created,
    free_port,
    ledger_config,
    poison,
    publish,
    titles,
)

EVENT = {"service": "ledger", "handler": HANDLER_QUEUE, "event_type": "customer_created"}


def scrape(port):
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_scraped_metrics_count_consumed_retried_dead_lettered_events_and_rpc_calls(
    container_factory, rabbit_config, tmp_path
):
    port = free_port()
    config = ledger_config(rabbit_config, tmp_path, METRICS_PORT=str(port))
    container_factory(LedgerService, config).start()
    container_factory(LedgerService, {**config, "max_workers": 2}).start()  # same port: no clash
    before = scrape(port)
    duplicate = customer_created("twice")
    FAILURES["once"] = 1
    poison("never")

    for envelope in (duplicate, duplicate, customer_created("once"), customer_created("never")):
        publish(config, envelope)
    eventually(lambda: titles(config) == ["once", "twice"], what="the good events applied")
    with ServiceRpcProxy("ledger", config, context_data=ADMIN, timeout=10) as ledger:
        eventually(lambda: ledger.list_dead_letters()["items"], what="the dead letter")
    sales = context_of(Principal("u-sales"))
    with (
        ServiceRpcProxy("ledger", config, context_data=sales, timeout=10) as ledger,
        pytest.raises(Forbidden),
    ):
        ledger.list_dead_letters()

    after = scrape(port)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("crm_events_consumed_total", **EVENT, outcome="applied") == 2
    assert grew("crm_events_consumed_total", **EVENT, outcome="duplicate") == 1
    assert grew("crm_events_retried_total", **EVENT) == 3  # "once" once, "never" twice
    assert grew("crm_events_dead_lettered_total", **EVENT) == 1
    rpc = {"service": "ledger", "method": "list_dead_letters"}
    assert grew("crm_rpc_calls_total", **rpc, outcome="ok") >= 1
    assert grew("crm_rpc_calls_total", **rpc, outcome="forbidden") == 1
    assert grew("crm_rpc_duration_seconds_count", **rpc, outcome="forbidden") == 1
    assert ("crm_db_pool_connections_in_use", (("service", "ledger"),)) in after
