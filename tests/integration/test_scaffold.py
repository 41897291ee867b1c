"""A scaffolded service starts, migrates, answers ping and its schemas on the real broker, and
appears in the gateway's OpenAPI document, before it has any domain code."""

from __future__ import annotations

import shutil
import socket
import sys
import tomllib
import uuid

import pytest
import requests
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import create_engine, inspect

from crm_common.db import dispose_engine
from crm_common.migrations import upgrade
from devstack import registry, scaffold
from tests.support.polling import eventually

ROOT = registry.ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def scaffolded(tmp_path):
    """A copy of the repository's registry files with a new service scaffolded into it; the
    service's package importable for the test's duration."""
    for path in ("services.toml", "requirements-dev.txt", "pyproject.toml"):
        shutil.copy(ROOT / path, tmp_path / path)
    name = f"probe_{uuid.uuid4().hex[:6]}"
    written = scaffold.scaffold(name, tmp_path)
    sys.path.insert(0, str(tmp_path / "services" / name))
    try:
        yield tmp_path, name, written
    finally:
        sys.path.remove(str(tmp_path / "services" / name))
        for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
            del sys.modules[module]


def test_the_scaffold_writes_the_standard_layout_and_registers_the_service(scaffolded):
    root, name, written = scaffolded
    package = f"services/{name}/{name}"
    assert {
        f"services/{name}/pyproject.toml",
        f"services/{name}/config.yml",
        f"services/{name}/alembic.ini",
        f"{package}/service.py",
        f"{package}/application/__init__.py",
        f"{package}/repository.py",
        f"{package}/domain/__init__.py",
        f"{package}/models.py",
        f"{package}/schemas.py",
        f"{package}/events.py",
        f"{package}/migrations/env.py",
        f"{package}/migrations/versions/0001_initial.py",
        f"tests/unit/{name}/test_service.py",
    } <= set(written)
    project = tomllib.loads((root / f"services/{name}/pyproject.toml").read_text("utf-8"))
    assert project["project"]["name"] == f"crm-{name}"
    assert "crm-common" in project["project"]["dependencies"]

    assert registry.load(root)[-1] == registry.Service(name, name, True, None)
    assert f"-e services/{name}\n" in (root / "requirements-dev.txt").read_text("utf-8")
    ruff = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["tool"]["ruff"]
    assert name in ruff["lint"]["isort"]["known-first-party"]

    with pytest.raises(scaffold.ScaffoldError, match="already"):
        scaffold.scaffold(name, root)


@pytest.mark.parametrize("name", ["Sales", "gateway", "9lives", "sales-erp", "org"])
def test_a_name_that_cannot_be_a_service_is_refused(name):
    with pytest.raises(scaffold.ScaffoldError):
        scaffold.check_name(name, ROOT)


def test_the_new_service_migrates_starts_and_appears_in_openapi(
    scaffolded, rabbit_config, container_factory
):
    root, name, _ = scaffolded
    uri = f"sqlite:///{root / 'var' / f'{name}.db'}"
    upgrade(name, uri)
    engine = create_engine(uri)
    try:
        assert {"outbox", "inbox"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()

    service_module = __import__(f"{name}.service", fromlist=["*"])
    service_class = getattr(service_module, f"{scaffold.camel(name)}Service")
    config = {**rabbit_config, "DB_URIS": {name: uri}, "METRICS_PORT": 0}
    container_factory(service_class, config).start()
    try:
        with ServiceRpcProxy(name, config, timeout=10) as proxy:
            assert proxy.ping() == "pong"
            assert set(proxy.api_schemas()) == {"Record"}
            assert proxy.api_events() == {}

        from gateway.service import GatewayService

        port = free_port()
        gateway_config = {
            **rabbit_config,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "BACKEND_SERVICES": name,
            "METRICS_PORT": 0,
        }
        container_factory(GatewayService, gateway_config).start()

        def ready():
            # the gateway as a whole waits for org's revocation state, which is not running
            checks = requests.get(f"http://127.0.0.1:{port}/ready", timeout=5).json()["checks"]
            return checks[name] == "ok"

        eventually(ready, timeout=15, what="the gateway to find the new service ready")
        document = requests.get(f"http://127.0.0.1:{port}/api/openapi.json", timeout=10).json()
        record = [key for key in document["components"]["schemas"] if "Record" in key]
        assert record, sorted(document["components"]["schemas"])
        assert "version" in document["components"]["schemas"][record[0]]["properties"]
    finally:
        dispose_engine(uri)
