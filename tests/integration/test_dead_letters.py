"""Dead letters on the real RabbitMQ: listed, inspected, replayed once after a fix, discarded,
through the kit's RPCs (permission system:admin) and the operators' CLI."""

from __future__ import annotations

import json

import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from crm_common.context import Principal
from crm_common.dead_letters import main as dead_letters_cli
from crm_common.errors import Forbidden, NotFound
from tests.support.polling import eventually
from tests.support.tokens import context_of

from .event_ledger import (
    ADMIN,
    FAILURES,
    HANDLER_QUEUE,
    LedgerService,
    customer_created,
    ledger_config,
    poison,
    publish,
    titles,
)


@pytest.fixture
def config(rabbit_config, tmp_path):
    return ledger_config(rabbit_config, tmp_path)


@pytest.fixture
def ledger(container_factory, config):
    container_factory(LedgerService, config).start()
    with ServiceRpcProxy("ledger", config, context_data=ADMIN, timeout=10) as proxy:
        yield proxy


def dead_letter_of(ledger, name, config):
    """Publish an event the handler refuses and wait for its dead letter."""
    poison(name)
    envelope = customer_created(name)
    publish(config, envelope)
    return eventually(
        lambda: next(
            (
                i
                for i in ledger.list_dead_letters()["items"]
                if i["event_id"] == envelope["event_id"]
            ),
            None,
        ),
        what=f"the dead letter of {name}",
    )


def test_a_dead_letter_is_listed_and_inspected_with_its_headers(ledger, config):
    item = dead_letter_of(ledger, "华北轴承", config)

    details = ledger.get_dead_letter(item["id"])
    assert details["envelope"]["data"] == {"name": "华北轴承"}
    assert details["headers"]["x-handler"] == HANDLER_QUEUE
    assert details["headers"]["x-attempts"] == 3
    assert "cannot apply 华北轴承" in details["headers"]["x-error"]
    assert item["service"] == "ledger" and item["dead_lettered_at"]
    assert ledger.get_dead_letter(item["id"])["id"] == item["id"]  # reading leaves it in place


def test_replay_after_a_fix_applies_the_event_once(ledger, config):
    item = dead_letter_of(ledger, "replayed", config)
    FAILURES.clear()  # the handler is fixed

    result = ledger.replay_dead_letter(item["id"])

    assert result["replayed_to"] == HANDLER_QUEUE
    eventually(lambda: titles(config) == ["replayed"], what="the replayed event applied")
    assert ledger.list_dead_letters()["items"] == []
    with pytest.raises(NotFound):
        ledger.replay_dead_letter(item["id"])
    publish(config, {**customer_created("replayed"), "event_id": item["event_id"]})  # again
    publish(config, customer_created("marker"))
    eventually(lambda: "marker" in titles(config), what="the marker")
    assert titles(config) == ["marker", "replayed"]


def test_discard_removes_a_dead_letter_without_applying_it(ledger, config):
    kept = dead_letter_of(ledger, "kept", config)
    dropped = dead_letter_of(ledger, "dropped", config)

    assert ledger.discard_dead_letter(dropped["id"])["discarded"] is True

    assert [i["id"] for i in ledger.list_dead_letters()["items"]] == [kept["id"]]
    with pytest.raises(NotFound):
        ledger.get_dead_letter(dropped["id"])
    assert titles(config) == []


def test_the_list_pages_and_filters(ledger, config):
    first = dead_letter_of(ledger, "one", config)
    second = dead_letter_of(ledger, "two", config)

    page = ledger.list_dead_letters({"limit": 1})
    assert [i["id"] for i in page["items"]] == [first["id"]]
    rest = ledger.list_dead_letters({"limit": 1, "cursor": page["next_cursor"]})
    assert [i["id"] for i in rest["items"]] == [second["id"]] and rest["next_cursor"] is None
    assert ledger.list_dead_letters({"event_type": "customer_merged"})["items"] == []
    assert len(ledger.list_dead_letters({"handler": HANDLER_QUEUE})["items"]) == 2


def test_dead_letters_need_the_system_admin_permission(ledger, config):
    item = dead_letter_of(ledger, "guarded", config)
    sales = context_of(Principal("u-sales", permissions=("customer:read",)))

    with ServiceRpcProxy("ledger", config, context_data=sales, timeout=10) as proxy:
        for call in (
            lambda: proxy.list_dead_letters(),
            lambda: proxy.get_dead_letter(item["id"]),
            lambda: proxy.replay_dead_letter(item["id"]),
            lambda: proxy.discard_dead_letter(item["id"]),
        ):
            with pytest.raises(Forbidden):
                call()
    assert [i["id"] for i in ledger.list_dead_letters()["items"]] == [item["id"]]


def test_the_cli_lists_shows_replays_and_discards(ledger, config, capsys):
    replayed = dead_letter_of(ledger, "via cli", config)
    dropped = dead_letter_of(ledger, "dropped by cli", config)
    FAILURES.clear()
    cli = ["--amqp-uri", config["AMQP_URI"], "--service", "ledger"]

    assert dead_letters_cli([*cli, "list"]) == 0
    listed = json.loads(capsys.readouterr().out)["items"]
    assert [i["id"] for i in listed] == [replayed["id"], dropped["id"]]
    assert dead_letters_cli([*cli, "show", dropped["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["envelope"]["data"] == {"name": "dropped by cli"}
    assert dead_letters_cli([*cli, "replay", replayed["id"]]) == 0
    assert dead_letters_cli([*cli, "discard", dropped["id"]]) == 0
    assert dead_letters_cli([*cli, "show", "no-such-id"]) == 1

    eventually(lambda: titles(config) == ["via cli"], what="the replayed event applied")
    assert ledger.list_dead_letters()["items"] == []
