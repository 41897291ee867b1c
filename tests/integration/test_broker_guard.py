"""`make run` refuses a virtual host where another stack already serves the suite's RPC
queues (two stacks on one vhost would split requests between their databases)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from kombu import Connection, Queue

from devstack import registry

ROOT = registry.ROOT
NAMES = [service.name for service in registry.load()]
PYTHON = shutil.which("python3.11") or sys.executable


def check(uri: str, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "scripts/check_broker.py", "--quiet", "--uri", uri, "--unserved", " ".join(names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def amqp_uri(rabbit_config):
    return rabbit_config["AMQP_URI"]


@pytest.fixture
def serving(amqp_uri):
    """A consumer on the first registry service's RPC queue, as a running stack has."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        queue = Queue(f"rpc-{NAMES[0]}", channel=channel, auto_delete=True)
        queue.declare()
        queue.consume(callback=lambda *_: None, no_ack=True)
        yield queue
        channel.close()


def test_an_empty_vhost_passes(amqp_uri):
    result = check(amqp_uri, *NAMES)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_queues_without_consumers_pass(amqp_uri):
    with Connection(amqp_uri) as connection:
        Queue(f"rpc-{NAMES[0]}", channel=connection.channel(), auto_delete=False).declare()
    assert check(amqp_uri, *NAMES).returncode == 0


def test_a_served_rpc_queue_is_refused_in_one_sentence_naming_the_vhost(amqp_uri, serving):
    result = check(amqp_uri, *NAMES)
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    vhost = amqp_uri.rsplit("/", 1)[1]
    assert f"virtual host {vhost!r}" in lines[0]
    assert "AMQP_URI" in lines[0] and f"rpc-{NAMES[0]}" in lines[0]
    assert check(amqp_uri, *NAMES[1:]).returncode == 0  # only the named services count


def test_make_run_stops_before_installing_anything(amqp_uri, serving):
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    env["AMQP_URI"] = amqp_uri
    result = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make")]
    assert len(ours) == 1 and "already served by another stack" in ours[0]
    assert "pip" not in result.stdout and "nameko run" not in result.stdout
