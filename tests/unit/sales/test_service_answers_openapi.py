"""The activity, expense, target and forecast answers as the gateway's OpenAPI document describes
them: decimals travel as strings and are documented as strings, so a front end generated from
the document reads what the service really sends."""

from __future__ import annotations

from datetime import date

import pytest
from jsonschema import Draft202012Validator
from marshmallow import fields

from crm_common.schemas import json_schemas
from gateway import openapi
from gateway.service import GatewayService
from gateway.web import api_routes
from sales.schemas import PUBLIC_SCHEMAS

from .sample_org import ADMIN, BUYER, EAST_MACHINERY, MANAGER, SALES


@pytest.fixture(scope="module")
def document():
    published = {"sales": json_schemas("sales", PUBLIC_SCHEMAS)}
    return openapi.build_document(api_routes(GatewayService), published)


@pytest.fixture
def service(expense_service):
    return expense_service


def conforms(document, schema_name, answer):
    schema = {"$ref": f"#/components/schemas/sales.{schema_name}"}
    Draft202012Validator({**schema, "components": document["components"]}).validate(answer)


def test_every_decimal_sent_as_a_string_is_documented_as_a_string():
    published = json_schemas("sales", PUBLIC_SCHEMAS)
    wrong = []
    for name, schema in PUBLIC_SCHEMAS.items():
        instance = schema() if isinstance(schema, type) else schema
        for field_name, field in instance.fields.items():
            if not (isinstance(field, fields.Decimal) and field.as_string):
                continue
            kind = published[name]["properties"][field.data_key or field_name]["type"]
            kinds = kind if isinstance(kind, list) else [kind]
            if "number" in kinds or "string" not in kinds:
                wrong.append(f"{name}.{field_name}: {kind}")
    assert wrong == []


def test_real_answers_match_their_documented_schemas(document, service, act_as):
    today = str(date.today())
    deal = service.create_opportunity(
        {
            "name": "立式加工中心",
            "customer_id": str(EAST_MACHINERY),
            "expected_amount": "90000",
            "expected_close_date": today,
            "contacts": [{"contact_id": str(BUYER), "role": "decision_maker"}],
        }
    )
    for stage in ("needs_confirmed", "proposal", "negotiation"):
        deal = service.move_opportunity_stage(deal["id"], {"stage_code": stage}, deal["version"])
    service.win_opportunity(deal["id"], {}, deal["version"])
    visit = service.plan_activity(
        {
            "type": "visit",
            "subject": "拜访设备部",
            "customer_id": str(EAST_MACHINERY),
            "opportunity_id": deal["id"],
            "start_at": "2026-03-02T09:30:00+08:00",
            "duration_minutes": 60,
        }
    )
    checked_in = service.check_in_activity(
        visit["id"], {"checkin_lat": "31.230416", "checkin_lng": 121.473701}
    )
    conforms(document, "Activity", checked_in)
    conforms(document, "ActivityPage", service.list_activities({}))
    expense = service.submit_expense(
        {
            "expense_category": "travel",
            "amount": "380.00",
            "spent_on": today,
            "customer_id": str(EAST_MACHINERY),
            "opportunity_id": deal["id"],
        }
    )
    conforms(document, "Expense", expense)
    act_as(MANAGER)
    conforms(document, "Expense", service.approve_expense(expense["id"], {}))
    conforms(document, "ExpensePage", service.list_expenses({}))
    conforms(document, "ExpenseTotals", service.expense_totals({"by": ["submitter_id", "month"]}))
    conforms(document, "CostOfSale", service.cost_of_sale({"opportunity_id": deal["id"]}))
    act_as(ADMIN)
    target = service.create_target(
        {"subject_type": "person", "subject_id": "p-sales-01", "period": today[:7], "amount": "1"}
    )
    conforms(document, "Target", target)
    conforms(document, "TargetList", service.list_targets({}))
    act_as(SALES)
    conforms(document, "Forecast", service.forecast_pipeline({"group_by": "stage"}))
    attainment = service.forecast_attainment({"period": today[:7]})
    assert attainment["items"][0]["percent"] is not None
    conforms(document, "Attainment", attainment)
    conforms(document, "Funnel", service.forecast_funnel({}))
    conforms(document, "StageDurations", service.forecast_stage_durations({}))
    win_rates = service.forecast_win_rates({})
    assert win_rates["items"][0]["win_rate"] == "100.0"
    conforms(document, "WinRates", win_rates)
