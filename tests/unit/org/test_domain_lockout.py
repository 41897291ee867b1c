from datetime import UTC, datetime, timedelta

import pytest

from org.domain.lockout import LockoutPolicy

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def test_the_threshold_failure_locks_for_the_duration():
    policy = LockoutPolicy(threshold=5, seconds=900)
    count, until = 0, None
    for expected in range(1, 5):
        attempts = policy.after_failure(count, until, NOW)
        assert attempts.failed_attempts == expected and attempts.locked_until is None
        assert not attempts.just_locked
        count = attempts.failed_attempts
    attempts = policy.after_failure(count, until, NOW)
    assert attempts.just_locked and attempts.failed_attempts == 5
    assert attempts.locked_until == NOW + timedelta(seconds=900)


def test_locked_until_the_moment_passes():
    policy = LockoutPolicy()
    until = NOW + timedelta(minutes=15)
    assert policy.is_locked(until, NOW)
    assert policy.is_locked(until, until - timedelta(seconds=1))
    assert not policy.is_locked(until, until)
    assert not policy.is_locked(None, NOW)


def test_naive_times_from_sqlite_are_utc():
    assert LockoutPolicy().is_locked(datetime(2026, 3, 2, 1, 10), NOW)


def test_a_spent_lock_starts_a_fresh_count():
    policy = LockoutPolicy(threshold=3, seconds=60)
    attempts = policy.after_failure(3, NOW - timedelta(seconds=1), NOW)
    assert attempts.failed_attempts == 1 and attempts.locked_until is None


@pytest.mark.parametrize(("threshold", "seconds"), [(0, 60), (3, 0)])
def test_nonsense_settings_are_refused(threshold, seconds):
    with pytest.raises(ValueError):
        LockoutPolicy(threshold, seconds)
