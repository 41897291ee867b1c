"""Root pytest configuration: green the whole process before anything imports sockets."""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

eventlet.monkey_patch()

pytest_plugins = ["tests.fixtures"]
