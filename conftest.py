"""Root pytest configuration: green the whole process before anything imports sockets."""

import eventlet

eventlet.monkey_patch()

import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=DeprecationWarning, module="eventlet")

pytest_plugins = ["tests.fixtures"]
