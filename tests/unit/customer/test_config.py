from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

CONFIG = Path(__file__).parents[3] / "services" / "customer" / "config.yml"


def load(monkeypatch, **env):
    for name in ("AMQP_URI", "DB_URI", "OUTBOX_POLL_SECONDS", "MAX_WORKERS", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setup_yaml_parser()
    return yaml.safe_load(CONFIG.read_text())


def test_defaults_serve_one_machine(monkeypatch):
    config = load(monkeypatch)
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost:5672/"
    assert config["DB_URIS"] == {"customer": "sqlite:///var/customer.db"}
    assert config["OUTBOX_POLL_SECONDS"] == 2


def test_every_value_follows_the_environment(monkeypatch):
    config = load(
        monkeypatch,
        AMQP_URI="amqp://crm:secret@rabbit-1:5672/crm",
        DB_URI="postgresql+psycopg2://customer:pw@db:5432/customer",
        OUTBOX_POLL_SECONDS="0.5",
        MAX_WORKERS="32",
        LOG_LEVEL="DEBUG",
    )
    assert config["AMQP_URI"] == "amqp://crm:secret@rabbit-1:5672/crm"
    assert config["DB_URIS"]["customer"] == "postgresql+psycopg2://customer:pw@db:5432/customer"
    assert config["OUTBOX_POLL_SECONDS"] == 0.5
    assert config["max_workers"] == 32
    assert config["LOGGING"]["root"]["level"] == "DEBUG"
