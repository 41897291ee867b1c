"""One JSON line per record, with the request id of the green thread that logged it."""

import io
import json
import logging

import pytest

from crm_common.context import bind
from crm_common.logs import JsonFormatter, RequestIdFilter


@pytest.fixture
def json_lines():
    """A logger writing through the JSON formatter; the process-wide record switches the
    formatter turns off are put back afterwards."""
    switches = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    kept = {name: getattr(logging, name) for name in switches}
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tests.json_lines")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    bind(None, None)
    for name, value in kept.items():
        setattr(logging, name, value)


def test_a_line_carries_the_request_id_and_the_extra_fields(json_lines):
    logger, lines = json_lines
    bind(None, "req-42")

    logger.info("answered %s in %.1f ms", "GET /api/customers", 1.25, extra={"status": 200})

    (line,) = lines()
    assert line["message"] == "answered GET /api/customers in 1.2 ms"
    assert line["request_id"] == "req-42"
    assert (line["level"], line["logger"], line["status"]) == ("INFO", "tests.json_lines", 200)
    assert set(line) == {"ts", "level", "logger", "message", "request_id", "status"}


def test_records_no_longer_look_up_their_caller_thread_or_process(json_lines):
    logger, _ = json_lines
    records = []
    logger.addFilter(lambda record: records.append(record) or True)

    logger.info("hello")

    (record,) = records
    assert (record.pathname, record.lineno) == ("(unknown file)", 0)
    assert (record.thread, record.process) == (None, None)
