"""The route tables against the registry and the real services' RPCs; the dead-letter list."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import pytest

from customer.service import CustomerService
from gateway import dead_letters, routes
from gateway.problems import HttpProblem
from gateway.service import GatewayService
from gateway.table import Row
from gateway.web import api_routes
from notify.service import NotifyService
from org.service import OrgService
from sales.service import SalesService

ROOT = Path(__file__).resolve().parents[3]
SERVICE_CLASSES = {
    "customer": CustomerService,
    "org": OrgService,
    "sales": SalesService,
    "notify": NotifyService,
}
TABLE_ROWS = [(table, row) for table in routes.tables() for row in table.rows]


def test_the_registry_names_every_route_table_module_and_no_other():
    registry = tomllib.loads((ROOT / "services.toml").read_text(encoding="utf-8"))

    named = {entry["routes"] for entry in registry["service"] if entry.get("routes")}

    assert named == set(routes.table_modules())
    assert {table.service for table in routes.tables()} == {
        entry["name"] for entry in registry["service"] if entry.get("routes")
    }


@pytest.mark.parametrize(
    ("table", "row"), TABLE_ROWS, ids=[f"{t.service}.{r.operation}" for t, r in TABLE_ROWS]
)
def test_each_row_calls_an_rpc_of_its_service_with_arguments_it_takes(table, row: Row):
    method = getattr(SERVICE_CLASSES[table.service], row.rpc)

    assert getattr(method, "nameko_entrypoints", None), f"{row.rpc} is not an entrypoint"
    inspect.signature(method).bind(None, *row.args, **row.kwargs)


def test_every_row_is_served_once_by_the_gateway():
    served = {name: route for name, route in api_routes(GatewayService)}

    for _, row in TABLE_ROWS:
        assert served[row.operation].url == row.url
        assert served[row.operation].method == row.method


# --- the dead letters of every service --------------------------------------------------

PAGES = {
    ("customer", None): {"items": [{"id": "c1"}, {"id": "c2"}], "next_cursor": "c-after-2"},
    ("customer", "c-after-2"): {"items": [{"id": "c3"}], "next_cursor": None},
    ("org", None): {"items": [{"id": "o1"}], "next_cursor": None},
}


def list_page(asked):
    def page_of(service, query):
        asked.append((service, dict(query)))
        return PAGES[service, query.get("cursor")]

    return page_of


def test_listing_every_service_pages_on_with_one_cursor():
    asked = []

    first = dead_letters.list_all({"limit": "2"}, ("customer", "org"), list_page(asked))
    second = dead_letters.list_all(
        {"limit": "2", "cursor": first["next_cursor"]}, ("customer", "org"), list_page(asked)
    )

    assert [(item["service"], item["id"]) for item in first["items"]] == [
        ("customer", "c1"),
        ("customer", "c2"),
        ("org", "o1"),
    ]
    assert second == {"items": [{"id": "c3", "service": "customer"}], "next_cursor": None}
    assert asked[-1] == ("customer", {"limit": "2", "cursor": "c-after-2"})


def test_listing_one_service_asks_only_that_one():
    asked = []

    page = dead_letters.list_all({"service": "org"}, ("customer", "org"), list_page(asked))

    assert page == {"items": [{"id": "o1", "service": "org"}], "next_cursor": None}
    assert asked == [("org", {})]


@pytest.mark.parametrize(
    ("query", "status"), [({"service": "billing"}, 404), ({"cursor": "not-ours!"}, 422)]
)
def test_an_unknown_service_is_404_and_a_foreign_cursor_422(query, status):
    with pytest.raises(HttpProblem) as caught:
        dead_letters.list_all(query, ("customer", "org"), list_page([]))

    assert caught.value.status == status
