"""``deploy/asyncapi.yaml``, the ERP contract's document: valid AsyncAPI 3.0 by the official
JSON schema, and in agreement with the code: every payload's fields, types, nullability and
required fields equal the marshmallow schemas' the services load events with, every channel
and binding the broker topology's, and every example loads."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from marshmallow import Schema, ValidationError, fields

from crm_common.events import EnvelopeSchema, VersionField
from devstack import topology
from devstack.registry import BROKER_VHOST, ROOT
from sales.schemas.erp import ERP_EVENT_SCHEMAS, ORDER_REQUEST_SCHEMAS, DecimalString

DOCUMENT_PATH = ROOT / "deploy" / "asyncapi.yaml"
ASYNCAPI_SCHEMA = ROOT / "deploy" / "schemas" / "asyncapi-3.0.0.json"
DOCUMENT: dict[str, Any] = yaml.safe_load(DOCUMENT_PATH.read_text(encoding="utf-8"))
CONTRACT: dict[str, type[Schema]] = {**ERP_EVENT_SCHEMAS, **ORDER_REQUEST_SCHEMAS}
MESSAGES: dict[str, dict[str, Any]] = DOCUMENT["components"]["messages"]


def validate_document(path: Path) -> subprocess.CompletedProcess[str]:
    checker = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [str(checker), "--schemafile", str(ASYNCAPI_SCHEMA), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = DOCUMENT
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def data_schema(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The event type a message carries and the JSON schema of its ``data``."""
    envelope, refinement = message["payload"]["allOf"]
    assert resolve(envelope) is DOCUMENT["components"]["schemas"]["Envelope"]
    properties = refinement["properties"]
    return properties["type"]["const"], resolve(properties["data"])


# -- one comparable shape from either side -------------------------------------------------
def json_shape(schema: dict[str, Any]) -> dict[str, Any]:
    schema = resolve(schema)
    declared = schema["type"]
    types = [declared] if isinstance(declared, str) else list(declared)
    shape: dict[str, Any] = {
        "type": tuple(sorted(t for t in types if t != "null")),
        "nullable": "null" in types,
        "format": schema.get("format"),
    }
    if "properties" in schema:
        shape["properties"] = {k: json_shape(v) for k, v in schema["properties"].items()}
        shape["required"] = sorted(schema.get("required", []))
    if "items" in schema:
        shape["items"] = json_shape(schema["items"])
    return shape


FIELD_TYPES: list[tuple[type[fields.Field[Any]], tuple[str, ...], str | None]] = [
    (DecimalString, ("string",), "decimal"),
    (fields.UUID, ("string",), "uuid"),
    (fields.DateTime, ("string",), "date-time"),
    (fields.Date, ("string",), "date"),
    (fields.String, ("string",), None),
    (fields.Integer, ("integer",), None),
    (fields.Boolean, ("boolean",), None),
    (fields.Dict, ("object",), None),
    (VersionField, ("integer", "string"), None),
]


def schema_shape(schema: Schema) -> dict[str, Any]:
    return {
        "properties": {name: field_shape(field) for name, field in schema.fields.items()},
        "required": sorted(name for name, field in schema.fields.items() if field.required),
    }


def field_shape(field: fields.Field[Any]) -> dict[str, Any]:
    if isinstance(field, fields.Nested):
        nested = field.schema
        assert isinstance(nested, Schema)
        kind: tuple[str, ...] = ("object",)
        return {"type": kind, "nullable": field.allow_none, "format": None, **schema_shape(nested)}
    if isinstance(field, fields.List):
        return {
            "type": ("array",),
            "nullable": field.allow_none,
            "format": None,
            "items": field_shape(field.inner),
        }
    for cls, types, form in FIELD_TYPES:
        if isinstance(field, cls):
            return {"type": types, "nullable": field.allow_none, "format": form}
    raise AssertionError(f"no JSON type known for {type(field).__name__}: add it to FIELD_TYPES")


# -- the document --------------------------------------------------------------------------
def test_the_document_is_valid_asyncapi_3_by_the_official_schema():
    assert DOCUMENT["asyncapi"] == "3.0.0"
    result = validate_document(DOCUMENT_PATH)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_refuses_what_asyncapi_3_does_not_allow(tmp_path):
    broken = copy.deepcopy(DOCUMENT)
    broken["components"]["operationBindings"]["erpPublish"]["amqp"]["deliveryMode"] = 3
    path = tmp_path / "asyncapi.yaml"
    path.write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")

    result = validate_document(path)

    assert result.returncode == 1
    assert "deliveryMode: 3 is not one of [1, 2]" in result.stdout


def test_every_event_of_the_contract_has_one_message_and_no_other():
    carried = [data_schema(message)[0] for message in MESSAGES.values()]
    assert sorted(carried) == sorted(CONTRACT)
    assert all(message["name"] == data_schema(message)[0] for message in MESSAGES.values())


@pytest.mark.parametrize("event_type", sorted(CONTRACT))
def test_a_payload_schema_equals_the_marshmallow_schema(event_type):
    [data] = [data_schema(m)[1] for m in MESSAGES.values() if data_schema(m)[0] == event_type]
    expected = {"type": ("object",), "nullable": False, "format": None}
    assert json_shape(data) == {**expected, **schema_shape(CONTRACT[event_type]())}


def test_the_envelope_schema_equals_crm_common_envelope():
    envelope = DOCUMENT["components"]["schemas"]["Envelope"]
    expected = {"type": ("object",), "nullable": False, "format": None}
    assert json_shape(envelope) == {**expected, **schema_shape(EnvelopeSchema())}


def test_channels_and_bindings_are_the_broker_topology():
    assert set(ERP_EVENT_SCHEMAS) == set(topology.ERP_EVENT_TYPES)
    assert set(ORDER_REQUEST_SCHEMAS) == set(topology.ORDER_REQUEST_TYPES)
    channels = DOCUMENT["channels"]
    erp_binding = {"$ref": "#/components/channelBindings/erpEvents"}
    erp_channels = {c["address"] for c in channels.values() if c["bindings"] == erp_binding}
    assert erp_channels == set(topology.ERP_EVENT_TYPES)
    exchange = DOCUMENT["components"]["channelBindings"]["erpEvents"]["amqp"]["exchange"]
    assert exchange == {
        "name": topology.ERP_EXCHANGE,
        "type": "topic",
        "durable": True,
        "autoDelete": False,
        "vhost": BROKER_VHOST,
    }
    requests = channels["orderRequests"]
    assert requests["address"] == topology.ERP_QUEUE
    assert requests["bindings"]["amqp"]["queue"]["name"] == topology.ERP_QUEUE
    for name, value in topology.erp_queue().arguments.items():
        written = value if value != "" else '""'
        assert f"`{name}: {written}`" in requests["description"], name
    carried = {data_schema(resolve(m))[0] for m in requests["messages"].values()}
    assert carried == set(topology.ORDER_REQUEST_TYPES)


def test_the_erp_sends_its_events_persistent_and_receives_the_order_requests():
    operations = DOCUMENT["operations"]
    publish = DOCUMENT["components"]["operationBindings"]["erpPublish"]["amqp"]
    assert publish["deliveryMode"] == 2 and publish["mandatory"] is True
    for operation in operations.values():
        channel = resolve(operation["channel"])
        if channel["address"] in topology.ERP_EVENT_TYPES:
            assert operation["action"] == "send"
            assert operation["bindings"] == {"$ref": "#/components/operationBindings/erpPublish"}
        else:
            assert operation["action"] == "receive"
    sent = {resolve(op["channel"])["address"] for op in operations.values()}
    assert sent == {*topology.ERP_EVENT_TYPES, topology.ERP_QUEUE}
    for message in MESSAGES.values():
        assert message["bindings"]["amqp"]["messageType"] == message["name"]
        trait = resolve(message["traits"][0])
        assert trait["contentType"] == "application/json"
        assert trait["x-amqp-properties"]["delivery_mode"] == 2


# -- the examples, and what both sides refuse or tolerate ----------------------------------
def payload_validator(message_name: str) -> Draft7Validator:
    root = {
        "allOf": [{"$ref": f"#/components/messages/{message_name}/payload"}],
        "components": DOCUMENT["components"],
    }
    return Draft7Validator(root, format_checker=Draft7Validator.FORMAT_CHECKER)


def load_event(envelope: dict[str, Any]) -> dict[str, Any]:
    EnvelopeSchema().load(envelope)
    loaded: dict[str, Any] = CONTRACT[envelope["type"]]().load(envelope["data"])
    return loaded


@pytest.mark.parametrize("message_name", sorted(MESSAGES))
def test_every_example_is_valid_by_the_document_and_by_the_code(message_name):
    examples = MESSAGES[message_name]["examples"]
    assert examples
    for example in examples:
        payload = example["payload"]
        errors = [e.message for e in payload_validator(message_name).iter_errors(payload)]
        assert errors == [], example["name"]
        assert load_event(payload), example["name"]


def example_of(message_name: str) -> dict[str, Any]:
    return copy.deepcopy(MESSAGES[message_name]["examples"][0]["payload"])


def test_an_amount_as_a_json_number_is_refused_by_both():
    envelope = example_of("invoiceIssued")
    envelope["data"]["amount"] = 2332.32

    assert list(payload_validator("invoiceIssued").iter_errors(envelope))
    with pytest.raises(ValidationError, match="decimal number written as a string"):
        load_event(envelope)


def test_a_missing_field_is_refused_by_both():
    envelope = example_of("paymentReceived")
    del envelope["data"]["customer"]["erp_code"]

    assert list(payload_validator("paymentReceived").iter_errors(envelope))
    with pytest.raises(ValidationError, match="erp_code"):
        load_event(envelope)


def test_fields_a_reader_does_not_know_are_tolerated_by_both():
    envelope = example_of("orderShipped")
    envelope["version"] = "1.1"
    envelope["data"]["warehouse"] = "上海一号仓"
    envelope["data"]["lines"][0]["batch_no"] = "B2026-03"

    assert list(payload_validator("orderShipped").iter_errors(envelope)) == []
    loaded = load_event(envelope)
    assert "warehouse" not in loaded and "batch_no" not in loaded["lines"][0]
