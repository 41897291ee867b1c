"""The files that build, run and deploy the suite, checked without a Docker engine.

deploy/docker-compose.yml is validated against the Compose Specification's JSON schema (as
shipped by check-jsonschema) and, where Debian's docker-compose is installed, by its own
`config -q`; then its meaning is checked: start order, health checks, databases, ports.
The dev config, the pins and `make run`'s answer when RabbitMQ is down are checked too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
INIT_SQL = sorted((DEPLOY / "postgres").glob("*.sql"))
BIN = Path(sys.executable).parent

INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


def interpolate(value: Any) -> Any:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME-default}, taking every default."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match["op"] in (":-", "-"):
            return match["arg"]
        raise AssertionError(f"{match[0]} needs an environment variable to be set")

    return INTERPOLATION.sub(replace, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return interpolate(raw)


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def published_ports(service: dict[str, Any]) -> set[tuple[str, str]]:
    found = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.add((str(port.get("published")), str(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            found.add((parts[-2], parts[-1]))
    return found


def service_packages() -> list[str]:
    return sorted(path.parent.name for path in ROOT.glob("services/*/pyproject.toml"))


def run_check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    tool = BIN / "check-jsonschema"
    assert tool.exists(), "check-jsonschema is not installed: run `make install`"
    return subprocess.run(
        [str(tool), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the compose file against the Compose Specification ----------------------------------


def test_compose_file_matches_the_compose_spec_schema():
    result = run_check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_compose_file(tmp_path):
    broken = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    broken["services"]["gateway"]["depends_on"]["customer"]["condition"] = "service_ready"
    broken["services"]["gateway"]["healthcheck"]["intervall"] = "5s"
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    result = run_check_jsonschema(path)
    assert result.returncode != 0
    assert "service_ready" in result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_docker_compose_accepts_the_file():
    result = subprocess.run(
        ["docker-compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=DEPLOY,
    )
    assert result.returncode == 0, result.stderr


# --- what the compose file means ---------------------------------------------------------


def test_every_dependency_exists_and_start_order_waits_for_health(services):
    for name, service in services.items():
        for dependency, spec in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            condition = spec.get("condition")
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} starts when {dependency} has merely started ({condition})"
            )
            target = services[dependency]
            if condition == "service_healthy":
                test = (target.get("healthcheck") or {}).get("test")
                assert test and test[0] in ("CMD", "CMD-SHELL"), (
                    f"{name} waits for {dependency} to be healthy, but it has no healthcheck"
                )
                assert not target["healthcheck"].get("disable")
            else:
                assert str(target.get("restart", "no")) == "no", (
                    f"{dependency} is a one-shot job and must not restart"
                )
                assert "healthcheck" not in target


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if str(service.get("restart", "no")) != "no":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_every_image_builds_from_the_one_dockerfile_with_its_service_as_argument(services):
    built = {name: service["build"] for name, service in services.items() if "build" in service}
    packages = service_packages()
    assert {*packages, *(f"{p}-migrate" for p in packages), "gateway"} <= built.keys()
    for name, build in built.items():
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, f"{name} builds from {context}, not the repository root"
        assert build["dockerfile"] == "deploy/Dockerfile", name
        service = build["args"]["SERVICE"]
        assert name.removesuffix("-migrate") == service, name
        folder = ROOT / "gateway" if service == "gateway" else ROOT / "services" / service
        assert (folder / "pyproject.toml").is_file(), f"{name}: no {folder.relative_to(ROOT)}"
        assert services[name]["image"] == f"crm/{service}:dev", name


def test_no_dockerfile_is_copied_per_service():
    dockerfiles = {
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("Dockerfile*")
        if not path.relative_to(ROOT).parts[0].startswith(".")
    }
    assert dockerfiles == {"deploy/Dockerfile"}


def test_the_dockerfile_takes_the_service_and_leaves_dev_code_out():
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG SERVICE$", text, re.MULTILINE)
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE)
    assert set(copied) == {"libs/crm_common", "services", "gateway", "constraints.txt"}
    assert '\\"$PACKAGE.service\\"' in text
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert "COPY --from=build /dist/wheels" in final_stage
    assert "/src/" not in final_stage, "the final image must not hold the sources of every service"


def test_each_service_package_is_deployed_and_migrated_before_it_starts(services):
    for package in service_packages():
        assert package in services, f"services/{package} is missing from the compose file"
        service = services[package]
        jobs = [
            dep
            for dep, spec in depends_on(service).items()
            if spec.get("condition") == "service_completed_successfully"
        ]
        assert jobs, f"{package} starts without waiting for its migrations"
        job = services[jobs[0]]
        command = job.get("command")
        command = command if isinstance(command, list) else str(command).split()
        assert command[-3:] == ["-m", "crm_common.migrations", package]
        assert environment(job)["DB_URI"] == environment(service)["DB_URI"]


def test_databases_in_the_init_script_match_the_services(services):
    assert INIT_SQL, "deploy/postgres/ has no init script"
    sql = "\n".join(path.read_text(encoding="utf-8") for path in INIT_SQL)
    databases = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql, re.IGNORECASE))
    roles = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']*)'", sql, re.IGNORECASE))

    postgres = services["postgres"]
    mounts = [str(volume) for volume in postgres.get("volumes", [])]
    assert any(
        m.split(":")[1] == "/docker-entrypoint-initdb.d"
        and (DEPLOY / m.split(":")[0]).resolve() == INIT_SQL[0].parent
        for m in mounts
    ), "the init scripts are not mounted into /docker-entrypoint-initdb.d"

    used: dict[str, str] = {}
    for name, service in services.items():
        uri = environment(service).get("DB_URI")
        if not uri:
            continue
        parts = urlsplit(uri)
        assert parts.scheme == "postgresql+psycopg2", f"{name}: {parts.scheme}"
        assert parts.hostname == "postgres" and (parts.port or 5432) == 5432
        database = parts.path.lstrip("/")
        assert database in databases, f"{name} uses database {database}, which is never created"
        assert databases[database] == parts.username, f"{database} is not owned by its user"
        assert roles.get(parts.username) == parts.password, f"{name}: wrong password"
        used[database] = name
    assert set(databases) == set(used), "a database in the init script is used by no service"
    assert set(used) == set(service_packages())


def broker_definitions() -> dict[str, Any]:
    return json.loads((DEPLOY / "rabbitmq" / "definitions.json").read_text(encoding="utf-8"))


def test_the_broker_loads_its_definitions_from_the_mounted_files(services):
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["image"].endswith("-management")
    assert "RABBITMQ_DEFAULT_USER" not in environment(rabbitmq), "users come from definitions"
    mounts = {}
    for volume in rabbitmq["volumes"]:
        source, target, *_ = str(volume).split(":")
        if source.startswith("."):
            assert (DEPLOY / source).is_file(), source
            mounts[target] = (DEPLOY / source).resolve()
    assert mounts["/etc/rabbitmq/definitions.json"] == DEPLOY / "rabbitmq" / "definitions.json"
    [conf] = [path for target, path in mounts.items() if target.startswith("/etc/rabbitmq/conf.d/")]
    settings = dict(
        line.split(" = ", 1)
        for line in conf.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert settings == {"load_definitions": "/etc/rabbitmq/definitions.json"}


def test_each_process_connects_as_its_own_broker_user(services):
    definitions = broker_definitions()
    hashes = {user["name"]: user["password_hash"] for user in definitions["users"]}
    granted = {(grant["user"], grant["vhost"]) for grant in definitions["permissions"]}
    users = {}
    for name, service in services.items():
        uri = environment(service).get("AMQP_URI")
        if not uri:
            continue
        parts = urlsplit(uri)
        assert parts.hostname == "rabbitmq", name
        assert parts.username == name, f"{name} connects as {parts.username}"
        salt = base64.b64decode(hashes[name])[:4]
        expected = base64.b64encode(salt + hashlib.sha256(salt + parts.password.encode()).digest())
        assert hashes[name] == expected.decode(), f"{name}: the password is not the user's"
        assert (name, parts.path.lstrip("/")) in granted, f"{name} has no rights on its vhost"
        assert depends_on(service)["rabbitmq"]["condition"] == "service_healthy", name
        users[name] = parts.username
    assert set(users) == {*service_packages(), "gateway"}


def test_gateway_publishes_port_8000_and_checks_its_health_there(services):
    gateway = services["gateway"]
    assert ("8000", "8000") in published_ports(gateway)
    assert environment(gateway)["WEB_SERVER_ADDRESS"] == "0.0.0.0:8000"
    assert "8000/health" in " ".join(gateway["healthcheck"]["test"])
    for package in service_packages():
        assert depends_on(gateway)[package]["condition"] == "service_healthy", package
    assert set(environment(gateway)["BACKEND_SERVICES"].split(",")) == set(service_packages())
    assert "TOKEN_SECRET" not in environment(gateway)


def test_every_process_gets_the_keys_and_the_management_port_stays_on_the_host(compose):
    for name in [*service_packages(), "gateway"]:
        service = compose["services"][name]
        assert environment(service)["PUBLIC_KEYS"] == "/run/secrets/crm-public-keys", name
        assert {"crm-public-keys", "crm-private-keys"} <= set(service["secrets"]), name
    assert set(compose["secrets"]) == {"crm-public-keys", "crm-private-keys"}
    assert "127.0.0.1:15672:15672" in compose["services"]["rabbitmq"]["ports"]
    assert "TOKEN_SECRET" not in json.dumps(compose)


# --- the dev config used by `make run` ---------------------------------------------------


def load_nameko_config(path: Path, env: dict[str, str]) -> dict[str, Any]:
    script = (
        "import json, sys, yaml\n"
        "from nameko.cli.main import setup_yaml_parser\n"
        "setup_yaml_parser()\n"
        "print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))\n"
    )
    clean = {key: value for key, value in os.environ.items() if not key.endswith("_URI")}
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_dev_config_defaults_serve_one_machine():
    config = load_nameko_config(ROOT / "config.yml", {})
    assert config["AMQP_URI"] == "amqp://guest:guest@localhost:5672/"
    assert config["WEB_SERVER_ADDRESS"].endswith(":8000")
    assert set(config["DB_URIS"]) == set(service_packages())
    assert set(config["BACKEND_SERVICES"].split(",")) == set(service_packages())
    for service, uri in config["DB_URIS"].items():
        assert uri == f"sqlite:///var/{service}.db"
    assert "TOKEN_SECRET" not in config
    assert (config["PUBLIC_KEYS"], config["PRIVATE_KEYS"]) == (
        "var/keys/public.jwks",
        "var/keys/private.jwks",
    )


def test_dev_config_values_follow_the_environment():
    config = load_nameko_config(
        ROOT / "config.yml",
        {
            "AMQP_URI": "amqp://crm:secret@rabbit-1:5672/crm",
            "CUSTOMER_DB_URI": "postgresql+psycopg2://customer:pw@db:5432/customer",
            "RPC_TIMEOUT": "3",
        },
    )
    assert config["AMQP_URI"] == "amqp://crm:secret@rabbit-1:5672/crm"
    assert config["DB_URIS"]["customer"] == "postgresql+psycopg2://customer:pw@db:5432/customer"
    assert config["RPC_TIMEOUT"] == 3


def test_dev_logging_config_applies():
    script = (
        "import json, logging, logging.config, sys\n"
        "logging.config.dictConfig(json.loads(sys.stdin.read()))\n"
        "logging.getLogger('probe').warning('hello %s', 'world')\n"
    )
    logging_config = load_nameko_config(ROOT / "config.yml", {})["LOGGING"]
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script],
        input=json.dumps(logging_config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["message"] == "hello world"
    assert line["level"] == "WARNING"


def test_make_migrates_the_databases_the_dev_config_uses():
    config = load_nameko_config(ROOT / "config.yml", {})
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_URI") and not key.startswith("MAKE")
    }
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", "migrate"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean,
    )
    assert result.returncode == 0, result.stderr
    for service, uri in config["DB_URIS"].items():
        assert f"-m crm_common.migrations {service} --uri '{uri}'" in result.stdout


# --- pins ---------------------------------------------------------------------------------


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonical(name)] = version
    return pins


def test_constraints_pin_every_installed_package_exactly():
    pins = read_pins()
    unpinned = []
    for dist in importlib.metadata.distributions():
        name = canonical(dist.metadata["Name"])
        direct_url = dist.read_text("direct_url.json")
        if direct_url and json.loads(direct_url).get("url", "").startswith("file:"):
            continue
        if pins.get(name) != dist.version:
            unpinned.append(f"{name}=={dist.version} (pinned: {pins.get(name)})")
    assert not unpinned, "installed but not pinned, run `make lock`: " + ", ".join(unpinned)


def test_dev_requirements_are_all_pinned_or_local():
    pins = read_pins()
    lines = (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
    entries = [line.split("#", 1)[0].strip() for line in lines]
    entries = [entry for entry in entries if entry]
    assert "-c constraints.txt" in entries
    for entry in entries:
        if entry.startswith("-e "):
            assert (ROOT / entry[3:] / "pyproject.toml").is_file(), entry
        elif not entry.startswith("-c "):
            assert canonical(re.split(r"[<>=!~\[; ]", entry)[0]) in pins, entry
    editable = {entry[3:] for entry in entries if entry.startswith("-e ")}
    projects = {
        str(path.parent.relative_to(ROOT))
        for pattern in ("*/pyproject.toml", "*/*/pyproject.toml")
        for path in ROOT.glob(pattern)
        if not path.relative_to(ROOT).parts[0].startswith(".")
    }
    assert editable == projects


# --- `make run` when RabbitMQ is not there ------------------------------------------------


def run_make_with_broker(uri: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    env["AMQP_URI"] = uri
    started = time.monotonic()
    result = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    return result, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_clear_sentence(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert len(ours) == 1, ours
    assert ours[0].startswith("RabbitMQ ")
    assert "rabbitmq-server -detached" in ours[0] and "AMQP_URI" in ours[0]
    assert "nameko run" not in result.stdout


def test_make_run_stops_at_once_when_nothing_listens():
    result, elapsed = run_make_with_broker(f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    assert elapsed < 10
    assert_one_clear_sentence(result)
    assert "not reachable" in result.stderr


def test_make_run_stops_within_10_seconds_when_the_broker_is_silent():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        result, elapsed = run_make_with_broker(f"amqp://guest:guest@127.0.0.1:{port}/")
    finally:
        listener.close()
        for conn in accepted:
            conn.close()
    assert elapsed < 10
    assert_one_clear_sentence(result)
    assert "did not answer" in result.stderr


def test_ci_script_is_valid_bash():
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "set -euo pipefail" in script.read_text(encoding="utf-8")
