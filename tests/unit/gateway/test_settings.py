import tomllib
from pathlib import Path

import pytest

from gateway import settings

ROOT = Path(__file__).resolve().parents[3]


def test_missing_or_blank_values_fall_back_to_defaults():
    assert settings.rpc_timeout({}) == 10.0
    assert settings.rpc_timeout({"RPC_TIMEOUT": ""}) == 10.0
    assert settings.rpc_timeout({"RPC_TIMEOUT": "2.5"}) == 2.5


def test_timeouts_must_be_positive():
    with pytest.raises(ValueError):
        settings.rpc_timeout({"RPC_TIMEOUT": 0})


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ("customer", ("customer",)),
        ("customer, sales,", ("customer", "sales")),
        (["a", "b"], ("a", "b")),
    ],
)
def test_backend_services_as_list_or_comma_string(raw, names):
    assert settings.backend_services({"BACKEND_SERVICES": raw}) == names


def test_the_gateway_stands_before_customer_and_org_by_default():
    registry = tomllib.loads((ROOT / "services.toml").read_text(encoding="utf-8"))

    assert settings.backend_services({}) == tuple(entry["name"] for entry in registry["service"])


def load_config(path):
    """The config file as ``nameko run --config`` reads it, ``${ENV_VAR:default}`` applied."""
    import yaml
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_the_shipped_config_file_has_every_key_overridable(monkeypatch):
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "gateway" / "config.yml"
    text = path.read_text(encoding="utf-8")
    for key in settings.DEFAULTS:
        assert f"{key}: ${{{key}:" in text, key
    monkeypatch.setenv("RPC_TIMEOUT", "4")
    monkeypatch.setenv("WEB_SERVER_ADDRESS", "127.0.0.1:9001")

    config = load_config(str(path))

    assert config["RPC_TIMEOUT"] == 4
    assert config["WEB_SERVER_ADDRESS"] == "127.0.0.1:9001"
    assert "TOKEN_SECRET" not in config
    for key, default in settings.DEFAULTS.items():
        if key not in ("RPC_TIMEOUT",):
            assert settings.value(config, key) == default, key


def test_backend_in_flight_limits_default_and_per_service():
    config = {
        "BACKEND_MAX_IN_FLIGHT": "8",
        "BACKEND_MAX_IN_FLIGHT_BY_SERVICE": "customer=2, org=50",
    }

    assert settings.backend_max_in_flight(config) == (8, {"customer": 2, "org": 50})
    assert settings.backend_max_in_flight({}) == (32, {})
    assert settings.backend_max_in_flight({"BACKEND_MAX_IN_FLIGHT_BY_SERVICE": {"sales": 4}}) == (
        32,
        {"sales": 4},
    )


@pytest.mark.parametrize(
    "config",
    [
        {"BACKEND_MAX_IN_FLIGHT": "0"},
        {"BACKEND_MAX_IN_FLIGHT_BY_SERVICE": "customer"},
        {"BACKEND_MAX_IN_FLIGHT_BY_SERVICE": "customer=-1"},
    ],
)
def test_wrong_in_flight_limits_are_refused(config):
    with pytest.raises(ValueError):
        settings.backend_max_in_flight(config)
