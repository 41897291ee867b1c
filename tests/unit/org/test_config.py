from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

from org.domain.lockout import LockoutPolicy
from org.hashing import HashCost
from org.runtime import Settings

CONFIG = Path(__file__).parents[3] / "services" / "org" / "config.yml"
VARIABLES = (
    "AMQP_URI",
    "DB_URI",
    "OUTBOX_POLL_SECONDS",
    "MAX_WORKERS",
    "LOG_LEVEL",
    "REFRESH_TTL_SECONDS",
    "SESSION_MAX_SECONDS",
    "LOCKOUT_THRESHOLD",
    "LOCKOUT_SECONDS",
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_COST",
    "ARGON2_PARALLELISM",
)


def load(monkeypatch, **env):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setup_yaml_parser()
    return yaml.safe_load(CONFIG.read_text())


def test_defaults_serve_one_machine_with_the_documented_policy(monkeypatch):
    config = load(monkeypatch)
    assert config["DB_URIS"] == {"org": "sqlite:///var/org.db"}
    assert Settings.from_config(config) == Settings()
    assert Settings() == Settings(
        refresh_ttl_seconds=14 * 86400,
        session_max_seconds=30 * 86400,
        lockout=LockoutPolicy(5, 60),
        hash_cost=HashCost(3, 65536, 4),
    )
    assert Settings.from_config({}) == Settings()


def test_every_value_follows_the_environment(monkeypatch):
    config = load(
        monkeypatch,
        DB_URI="postgresql+psycopg2://org:pw@db:5432/org",
        REFRESH_TTL_SECONDS="3600",
        SESSION_MAX_SECONDS="86400",
        LOCKOUT_THRESHOLD="3",
        LOCKOUT_SECONDS="30",
        ARGON2_TIME_COST="2",
        ARGON2_MEMORY_COST="19456",
        ARGON2_PARALLELISM="1",
        MAX_WORKERS="32",
    )
    assert config["DB_URIS"]["org"] == "postgresql+psycopg2://org:pw@db:5432/org"
    assert config["max_workers"] == 32
    assert Settings.from_config(config) == Settings(
        refresh_ttl_seconds=3600,
        session_max_seconds=86400,
        lockout=LockoutPolicy(3, 30),
        hash_cost=HashCost(2, 19456, 1),
    )
