from datetime import UTC, datetime, timedelta

import pytest

from org.domain.lockout import LockoutPolicy

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_from_the_threshold_each_failure_doubles_the_wait_up_to_the_longest():
    policy = LockoutPolicy(threshold=5, seconds=60)
    count, until = 0, None
    for expected in range(1, 5):
        attempts = policy.after_failure(count, until, NOW)
        assert attempts.failed_attempts == expected and attempts.locked_until is None
        assert not attempts.just_locked
        count = attempts.failed_attempts
    waits = []
    for _ in range(9):
        attempts = policy.after_failure(count, until, NOW)
        count, until = attempts.failed_attempts, attempts.locked_until
        waits.append(policy.retry_after(until, NOW))
        assert attempts.just_locked == (count == 5)
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_retry_after_counts_whole_seconds_left():
    policy = LockoutPolicy()
    assert policy.retry_after(NOW + timedelta(seconds=1.2), NOW) == 2
    assert policy.retry_after(NOW, NOW) == 0
    assert policy.retry_after(None, NOW) == 0


def test_locked_until_the_moment_passes():
    policy = LockoutPolicy()
    until = NOW + timedelta(minutes=15)
    assert policy.is_locked(until, NOW)
    assert policy.is_locked(until, until - timedelta(seconds=1))
    assert not policy.is_locked(until, until)
    assert not policy.is_locked(None, NOW)


def test_naive_times_from_sqlite_are_utc():
    assert LockoutPolicy().is_locked(datetime(2026, 3, 2, 1, 10), NOW)


def test_a_spent_wait_does_not_end_the_streak():
    policy = LockoutPolicy(threshold=3, seconds=60)
    attempts = policy.after_failure(3, NOW - timedelta(seconds=1), NOW)
    assert attempts.failed_attempts == 4
    assert attempts.locked_until == NOW + timedelta(seconds=2)


@pytest.mark.parametrize(("threshold", "seconds"), [(0, 60), (3, 0)])
def test_nonsense_settings_are_refused(threshold, seconds):
    with pytest.raises(ValueError):
        LockoutPolicy(threshold, seconds)
