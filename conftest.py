"""Root pytest configuration: green the whole process before anything imports sockets."""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import pytest  # noqa: E402

pytest_plugins = ["tests.fixtures"]


@pytest.fixture
def rabbit_config(rabbit_config):
    """Nameko's config of a fresh vhost, with the test keys every process needs to start."""
    from tests.support.tokens import KEYS

    return {**rabbit_config, **KEYS.config()}
