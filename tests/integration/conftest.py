"""Fixtures of the gateway's integration tests: a gateway in front of the stand-ins."""

from __future__ import annotations

import logging

import pytest

from crm_common.logs import RequestIdFilter
from tests.integration.standins import StandInCustomer, gateway_config, start_gateway


@pytest.fixture
def api(rabbit_config, runner_factory):
    """A gateway in front of the customer stand-in."""
    return start_gateway(runner_factory, gateway_config(rabbit_config), StandInCustomer)


@pytest.fixture
def lonely_api(rabbit_config, runner_factory):
    """A gateway with no customer service behind it."""
    return start_gateway(runner_factory, gateway_config(rabbit_config))


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def log_records():
    """The log records of the whole process while the test runs, with their request ids."""
    handler = Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(previous)
