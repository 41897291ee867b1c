import pytest

from gateway.throttle import SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_an_address_is_held_back_once_it_reaches_the_limit_until_the_window_moves(clock):
    throttle = SignInThrottle(limit=3, window=60, clock=clock)
    for _ in range(2):
        throttle.refused("10.0.0.7")
        clock.now += 10
    assert throttle.retry_after("10.0.0.7") is None
    throttle.refused("10.0.0.7")
    assert throttle.retry_after("10.0.0.7") == 40
    assert throttle.retry_after("10.0.0.8") is None, "other addresses are not affected"
    clock.now += 40
    assert throttle.retry_after("10.0.0.7") is None, "the oldest refusal left the window"


def test_retry_after_is_at_least_one_second(clock):
    throttle = SignInThrottle(limit=1, window=1, clock=clock)
    throttle.refused("a")
    clock.now += 0.999
    assert throttle.retry_after("a") == 1


@pytest.mark.parametrize("limit, window", [(0, 60), (3, 0)])
def test_a_throttle_needs_a_positive_limit_and_window(limit, window):
    with pytest.raises(ValueError):
        SignInThrottle(limit, window)
