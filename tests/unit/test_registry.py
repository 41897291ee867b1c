"""Everything outside a service's folder agrees with the service registry (services.toml)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from devstack import registry
from devstack.stack import Suite

ROOT = registry.ROOT
SERVICES = registry.load()
NAMES = [service.name for service in SERVICES]
DATABASES = [service.name for service in registry.databases(SERVICES)]


def nameko_config(path: Path) -> dict:
    """A config.yml read the way `nameko run` reads it, with every default taken."""
    script = (
        "import json, sys, yaml\n"
        "from nameko.cli.main import setup_yaml_parser\n"
        "setup_yaml_parser()\n"
        "print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))\n"
    )
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_URI") and key not in ("BACKEND_SERVICES", "METRICS_PORT")
    }
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def make_dry_run(target: str) -> str:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_URI") and not key.startswith("MAKE")
    }
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_service_folder_is_registered_and_every_entry_has_its_folder():
    folders = {path.parent.name for path in ROOT.glob("services/*/pyproject.toml")}
    assert folders == set(NAMES)
    for service in SERVICES:
        assert (ROOT / service.folder / service.package / "service.py").is_file(), service


def test_the_generated_files_agree_with_the_registry():
    assert registry.outdated() == [], "run `make registry`"


def test_the_registry_is_read_by_the_standard_library_alone():
    # -S: no site-packages, so nothing the virtual environment installed is importable.
    result = subprocess.run(
        [sys.executable, "-S", "-m", "devstack.registry", "modules"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == registry.process_modules(SERVICES)


def test_make_run_serves_migrates_and_guards_the_registry_services():
    run = make_dry_run("run")
    modules = " ".join(registry.process_modules(SERVICES))
    assert re.search(rf"nameko run --config config\.yml {re.escape(modules)}$", run, re.M)
    assert f'--unserved "{" ".join(NAMES)}"' in run
    migrate = make_dry_run("migrate")
    for name in DATABASES:
        assert f"-m crm_common.migrations {name} --uri 'sqlite:///var/{name}.db'" in migrate
    assert migrate.count("-m crm_common.migrations") == len(DATABASES)


def test_make_demo_loads_each_demo_module_into_its_database():
    demo = make_dry_run("demo")
    for service in registry.databases(SERVICES):
        module = registry.demo_module(service)
        if module:
            assert f"DB_URI='sqlite:///var/{service.name}.db'" in demo
            assert f"-m {module};" in demo


def test_the_dev_config_has_a_database_per_service_and_every_backend():
    config = nameko_config(ROOT / "config.yml")
    assert config["DB_URIS"] == {name: f"sqlite:///var/{name}.db" for name in DATABASES}
    assert config["BACKEND_SERVICES"].split(",") == NAMES


def test_the_gateway_backends_are_the_registry_services():
    config = nameko_config(ROOT / "gateway" / "config.yml")
    assert config["BACKEND_SERVICES"].split(",") == NAMES
    from gateway.settings import DEFAULTS

    assert set(DEFAULTS["BACKEND_SERVICES"].split(",")) == set(NAMES)


def test_each_service_config_names_its_own_database():
    for service in SERVICES:
        config = nameko_config(ROOT / service.folder / "config.yml")
        expected = {service.name: f"sqlite:///var/{service.name}.db"} if service.database else {}
        assert config.get("DB_URIS", {}) == expected, service.name


def test_every_config_has_the_metrics_port_and_retry_delays():
    paths = [ROOT / "config.yml", ROOT / "gateway" / "config.yml"]
    paths += [ROOT / service.folder / "config.yml" for service in SERVICES]
    for path in paths:
        config = nameko_config(path)
        assert config["METRICS_PORT"] == 9100, path
        assert str(config["EVENT_RETRY_DELAYS"]) == "1,10,60", path


def test_make_runs_sms_catcher_and_notify_share_the_receipt_token(monkeypatch):
    """The Makefile exports SMS_RECEIPT_TOKEN for the SMS catcher it starts; the one-process
    config must hand it to notify, or every receipt the catcher reports is refused."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert 'export SMS_RECEIPT_TOKEN="$${SMS_RECEIPT_TOKEN:-local-sms-receipt-token}"' in makefile
    monkeypatch.setenv("SMS_RECEIPT_TOKEN", "local-sms-receipt-token")
    assert nameko_config(ROOT / "config.yml")["SMS_RECEIPT_TOKEN"] == "local-sms-receipt-token"


def test_the_e2e_stack_starts_the_registry_services(tmp_path):
    assert list(Suite.services) == registry.process_modules(SERVICES)
    suite = Suite(tmp_path)
    config = suite.config()
    assert config["BACKEND_SERVICES"].split(",") == NAMES
    assert sorted(config["DB_URIS"]) == sorted(DATABASES)
    ports = list(suite.metrics_ports.values())
    assert len(set(ports)) == len(ports) == len(Suite.services)


def test_the_postgresql_script_creates_a_database_and_role_per_database_service():
    sql = (ROOT / "deploy" / "postgres" / "01-databases.sql").read_text(encoding="utf-8")
    databases = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql))
    roles = re.findall(r"CREATE ROLE (\w+) LOGIN", sql)
    assert databases == {name: name for name in DATABASES}
    assert sorted(roles) == sorted(DATABASES)


def test_the_compose_file_runs_every_registry_service():
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text("utf-8"))
    services = compose["services"]
    for service in SERVICES:
        assert services[service.name]["build"]["args"]["SERVICE"] == service.name
        assert (f"{service.name}-migrate" in services) == service.database
    gateway = services["gateway"]
    assert gateway["environment"]["BACKEND_SERVICES"].split(",") == NAMES
    assert set(NAMES) <= set(gateway["depends_on"])
    expected = {"rabbitmq", "postgres", "mailcatcher", "sms-catcher", "gateway"} | set(NAMES)
    expected |= {f"{name}-migrate" for name in DATABASES}
    assert set(services) == expected


ROUTES = [service for service in SERVICES if service.routes]


@pytest.mark.parametrize("service", ROUTES, ids=[service.name for service in ROUTES])
def test_each_routes_module_imports(service):
    if importlib.util.find_spec(service.routes.rsplit(".", 1)[0]) is None:
        pytest.skip(f"{service.routes}'s package does not exist yet: route tables being built")
    importlib.import_module(service.routes)


# --- reading the registry ------------------------------------------------------------------


def write_registry(root: Path, text: str) -> Path:
    (root / "services.toml").write_text(text, encoding="utf-8")
    return root


def test_entries_are_read_into_records(tmp_path):
    root = write_registry(
        tmp_path,
        '[[service]]\nname = "notify"\npackage = "notify"\ndatabase = true\n\n'
        '[[service]]\nname = "relay"\n',
    )
    notify, relay = registry.load(root)
    assert notify == registry.Service("notify", "notify", True, None)
    assert notify.rpc_queue == "rpc-notify" and notify.db_env == "NOTIFY_DB_URI"
    assert relay == registry.Service("relay", "relay", False, None)
    assert registry.process_modules((notify, relay)) == [
        "notify.service",
        "relay.service",
        "gateway.service",
    ]
    assert "relay-migrate" not in registry.render_compose((notify, relay))
    assert "CREATE DATABASE relay" not in registry.render_postgres_script((notify, relay))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[service]]\nname = "a"\n\n[[service]]\nname = "a"\n', "listed twice"),
        ('[[service]]\nname = "Sales"\n', "not a valid service name"),
        ('[[service]]\nname = "gateway"\n', "not a valid service name"),
        ('[[service]]\nname = "sales"\ndatabse = true\n', "unknown keys"),
        ('[[service]]\nname = "sales"\ndatabase = "yes"\n', "true or false"),
        ('[[service]]\nname = "sales"\nconsumes = "org"\n', "consumes must list"),
        ('[[service]]\nname = "sales"\nconsumes = ["Org"]\n', "consumes must list"),
    ],
)
def test_a_wrong_entry_is_refused_with_its_reason(tmp_path, text, problem):
    with pytest.raises(registry.RegistryError, match=problem):
        registry.load(write_registry(tmp_path, text))


def test_a_stale_generated_file_is_named_and_rewritten(tmp_path):
    for path in ("services.toml", "config.yml", "gateway/config.yml"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((ROOT / path).read_text("utf-8"), encoding="utf-8")
    assert set(registry.outdated(tmp_path)) == {
        "deploy/postgres/01-databases.sql",
        "deploy/docker-compose.yml",
        "deploy/rabbitmq/definitions.json",
    }
    registry.write(tmp_path)
    with (tmp_path / "services.toml").open("a", encoding="utf-8") as stream:
        stream.write('\n[[service]]\nname = "service_desk"\ndatabase = true\n')
    assert len(registry.outdated(tmp_path)) == 5
    registry.write(tmp_path)
    assert registry.outdated(tmp_path) == []
    config = (tmp_path / "config.yml").read_text("utf-8")
    assert "  service_desk: ${SERVICE_DESK_DB_URI:sqlite:///var/service_desk.db}\n" in config
    assert f"BACKEND_SERVICES: ${{BACKEND_SERVICES:{','.join(NAMES)},service_desk}}" in config


# --- broker users ---------------------------------------------------------------------------


def event_sources(service_cls: type) -> set[str]:
    """The services whose events a Nameko service class handles, read from its entrypoints."""
    from nameko.events import EventHandler
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

    from crm_common.consumer import EventConsumer

    sources = set()
    for name in dir(service_cls):
        for entrypoint in getattr(getattr(service_cls, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(entrypoint, (EventConsumer, EventHandler)):
                sources.add(entrypoint.source_service)
    return sources


@pytest.mark.parametrize("service", SERVICES, ids=NAMES)
def test_each_service_consumes_what_the_registry_says(service):
    module = importlib.import_module(service.module)
    [service_cls] = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and getattr(value, "name", None) == service.name
    ]
    assert event_sources(service_cls) == set(service.consumes)


def test_the_gateway_consumes_what_the_registry_says():
    from gateway.service import GatewayService

    assert event_sources(GatewayService) == set(registry.GATEWAY_CONSUMES)


def definitions() -> dict:
    path = ROOT / "deploy" / "rabbitmq" / "definitions.json"
    return json.loads(path.read_text(encoding="utf-8"))


def test_the_broker_definitions_give_each_process_its_own_user_on_the_suite_vhost():
    loaded = definitions()
    processes = [*NAMES, "gateway"]
    assert [vhost["name"] for vhost in loaded["vhosts"]] == [registry.BROKER_VHOST]
    users = {user["name"]: user for user in loaded["users"]}
    assert set(users) == {registry.BROKER_ADMIN, registry.ERP_USER, *processes}
    assert users[registry.BROKER_ADMIN]["tags"] == ["administrator"]
    for process in processes:
        assert users[process]["tags"] == [], process
        assert users[process]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    granted = {grant["user"]: grant for grant in loaded["permissions"]}
    assert {grant["vhost"] for grant in loaded["permissions"]} == {registry.BROKER_VHOST}
    for service in SERVICES:
        expected = registry.broker_permissions(service.name, service.consumes)
        assert {k: granted[service.name][k] for k in expected} == expected


def matches(pattern: str, name: str) -> bool:
    return re.search(pattern, name) is not None


def test_each_service_reaches_its_own_queues_and_exchanges_only():
    granted = {grant["user"]: grant for grant in definitions()["permissions"]}
    customer, org = granted["customer"], granted["org"]
    own = [
        "rpc-customer",
        "rpc.reply-customer-5afe379c-fc7a-4aba-b4cc-4588b0970ba7",
        "customer.on_department_changed",
        "customer.retry.10000ms",
        "customer.retried",
        "customer.dead-letters",
        "customer.events",
    ]
    for name in own:
        for right in ("configure", "write", "read"):
            assert matches(customer[right], name), (right, name)
    for right in ("configure", "write", "read"):
        assert matches(customer[right], "nameko-rpc"), right
    # It binds from org's events but may not publish there; nothing else of org's is its own.
    assert matches(customer["read"], "org.events")
    assert not matches(customer["write"], "org.events")
    for name in ("rpc-org", "rpc.reply-org-1", "org.dead-letters", "org.on_x", "xcustomer.y"):
        for right in ("configure", "write", "read"):
            assert not matches(customer[right], name), (right, name)
    assert not matches(org["read"], "customer.events")
    assert matches(org["write"], "org.events")


def test_the_gateway_reaches_its_broadcast_and_reply_queues_only():
    gateway = {grant["user"]: grant for grant in definitions()["permissions"]}["gateway"]
    broadcast = "evt-org-grants_changed--gateway.on_grants_changed-5afe379c-fc7a-4aba-b4cc"
    for right in ("configure", "write", "read"):
        assert matches(gateway[right], broadcast), right
        assert matches(gateway[right], "rpc.reply-gateway-5afe379c"), right
        assert not matches(gateway[right], "rpc-org"), right
        assert not matches(gateway[right], "evt-org-grants_changed--customer.on_x-1"), right
    assert matches(gateway["read"], "org.events")
    assert not matches(gateway["write"], "org.events")


def test_rpc_bindings_are_limited_to_a_service_own_calls_and_reply_queues():
    topics = {grant["user"]: grant for grant in definitions()["topic_permissions"]}
    assert {grant["exchange"] for grant in topics.values()} == {"nameko-rpc"}
    assert matches(topics["customer"]["read"], "customer.*")
    assert matches(topics["customer"]["read"], "5afe379c-fc7a-4aba-b4cc-4588b0970ba7")
    for key in ("org.*", "#", "*.*", "org.sign_in"):
        assert not matches(topics["customer"]["read"], key), key
        assert not matches(topics["gateway"]["read"], key), key


def test_the_erp_publishes_its_events_and_reads_its_requests_only():
    erp = {grant["user"]: grant for grant in definitions()["permissions"]}[registry.ERP_USER]
    assert erp["vhost"] == registry.BROKER_VHOST
    assert matches(erp["write"], "erp.events")
    assert matches(erp["read"], "erp.order-requests")
    for name in ("erp.events", "erp.order-requests", "sales.events", "erp.order-requests.x"):
        assert not matches(erp["configure"], name), name
    for name in ("sales.events", "nameko-rpc", "erp.eventsx", "amq.default", "erp.order-requests"):
        assert not matches(erp["write"], name), name
    for name in ("sales.on_erp_item_updated", "erp.order-requests.dead-letters", "erp.events"):
        assert not matches(erp["read"], name), name


def test_the_broker_password_hash_is_rabbitmq_sha256():
    import base64
    import hashlib

    raw = base64.b64decode(registry.broker_password_hash("secret", "customer"))
    salt, digest = raw[:4], raw[4:]
    assert digest == hashlib.sha256(salt + b"secret").digest()
