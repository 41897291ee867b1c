"""The collector tuning of a service process: on while its container runs, undone after."""

import gc

import pytest
from nameko.containers import ServiceContainer

from crm_common.runtime import YOUNG_THRESHOLD, CollectorTuning


class Quiet:
    name = "quiet"
    collector = CollectorTuning()


@pytest.fixture
def thresholds():
    kept = gc.get_threshold()
    yield
    gc.set_threshold(*kept)


def test_a_started_container_freezes_what_lives_and_collects_young_objects_less_often(
    thresholds,
):
    container = ServiceContainer(Quiet, {})
    container.start()
    try:
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    finally:
        container.stop()

    assert gc.get_freeze_count() == 0


def test_a_killed_container_unfreezes_too(thresholds):
    container = ServiceContainer(Quiet, {})
    container.start()

    container.kill()

    assert gc.get_freeze_count() == 0
