"""Fixtures for the security suite: the whole stack started as processes with the demo data.

``security_suite`` is shared by every module of the package: tests that only read, or that
write records of their own, may use it. A test that changes what others rely on (grants,
users, passwords, the broker) starts a ``Suite`` of its own.
"""

from __future__ import annotations

import pytest

from devstack.stack import Suite


@pytest.fixture(scope="session")
def security_suite(tmp_path_factory):
    """Every registry service and the gateway, demo data loaded, on a virtual host of its own."""
    with Suite(tmp_path_factory.mktemp("security"), demo=True) as running:
        yield running
