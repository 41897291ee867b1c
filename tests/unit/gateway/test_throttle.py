import pytest

from gateway.problems import HttpProblem
from gateway.throttle import Backoff, SignInThrottle


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


def test_one_client_guessing_one_username_waits_longer_and_longer(clock):
    throttle = SignInThrottle(limit=1000, window=300, clock=clock)
    for _ in range(3):
        throttle.refused("10.0.0.7", "sales01")
    assert throttle.retry_after("10.0.0.7", "sales01") is None, "three refusals are free"
    waits = []
    for _ in range(5):
        throttle.refused("10.0.0.7", "sales01")
        waits.append(throttle.retry_after("10.0.0.7", "sales01"))
        clock.now += waits[-1]
    assert waits == [2, 4, 8, 16, 32]


def test_the_pair_wait_stops_at_its_longest(clock):
    throttle = SignInThrottle(1000, 300, pair=Backoff(1, 2, 900), clock=clock)
    for _ in range(20):
        throttle.refused("10.0.0.7", "sales01")
    assert throttle.retry_after("10.0.0.7", "sales01") == 900


def test_strangers_failing_on_a_username_hold_its_owner_back_a_minute_at_most(clock):
    throttle = SignInThrottle(limit=1000, window=300, clock=clock)
    for attacker in range(200):
        throttle.refused(f"203.0.113.{attacker}", "Sales01")
    owner_wait = throttle.retry_after("192.0.2.10", "sales01")
    assert owner_wait == 60, "the username's wait is capped and the name is case-insensitive"
    clock.now += 60
    assert throttle.retry_after("192.0.2.10", "sales01") is None
    assert throttle.retry_after("192.0.2.10", "branch.east") is None, "other users are free"


def test_a_success_clears_the_pair_and_the_username(clock):
    throttle = SignInThrottle(limit=1000, window=300, clock=clock)
    for _ in range(6):
        throttle.refused("10.0.0.7", "sales01")
    clock.now += 1000
    throttle.succeeded("10.0.0.7", "sales01")
    throttle.refused("10.0.0.7", "sales01")
    assert throttle.retry_after("10.0.0.7", "sales01") is None


def test_a_streak_ends_a_window_after_its_wait(clock):
    throttle = SignInThrottle(limit=1000, window=300, clock=clock)
    for _ in range(4):
        throttle.refused("10.0.0.7", "sales01")
    assert throttle.retry_after("10.0.0.7", "sales01") == 2
    clock.now += 2 + 300
    throttle.refused("10.0.0.7", "sales01")
    assert throttle.retry_after("10.0.0.7", "sales01") is None, "a fresh streak, one refusal"


def test_check_answers_429_with_retry_after(clock):
    throttle = SignInThrottle(limit=1, window=60, clock=clock)
    throttle.refused("10.0.0.7", "a")
    with pytest.raises(HttpProblem) as caught:
        throttle.check("10.0.0.7", "b")
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "60"


def test_backoff_doubles_from_its_threshold():
    backoff = Backoff(after=3, base=1, longest=5)
    assert [backoff.wait_after(n) for n in range(1, 7)] == [0, 0, 1, 2, 4, 5]
    with pytest.raises(ValueError):
        Backoff(after=1, base=10, longest=5)
