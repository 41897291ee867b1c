from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from crm_common.errors import Conflict, ValidationFailed
from sales.domain.activities import (
    CheckIn,
    check_calendar_range,
    check_cancel,
    check_idle_days,
    check_in,
    check_plan,
    check_replan,
    check_type,
    complete,
    ends_at,
    idle_cutoff,
    is_idle,
    is_overdue,
    last_activity_after,
    normalize_participants,
)

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize("kind", ["call", "visit", "meeting", "email", "demo", "other"])
def test_types(kind):
    assert check_type(kind) == kind


@pytest.mark.parametrize("kind", ["lunch", "", None, "VISIT"])
def test_unknown_types(kind):
    with pytest.raises(ValidationFailed) as caught:
        check_type(kind)
    assert list(caught.value.field_errors) == ["type"]


# -- planning ------------------------------------------------------------------------------
@pytest.mark.parametrize("minutes", [1, 30, 24 * 60, 7 * 24 * 60])
def test_plans(minutes):
    assert check_plan(NOW, minutes) == minutes


@pytest.mark.parametrize(
    ("start", "minutes", "fields"),
    [
        (None, 30, ["start_at"]),
        (NOW, 0, ["duration_minutes"]),
        (NOW, 7 * 24 * 60 + 1, ["duration_minutes"]),
        (NOW, 1.5, ["duration_minutes"]),
        (NOW, True, ["duration_minutes"]),
        (None, None, ["duration_minutes", "start_at"]),
    ],
)
def test_incomplete_plans(start, minutes, fields):
    with pytest.raises(ValidationFailed) as caught:
        check_plan(start, minutes)
    assert sorted(caught.value.field_errors) == fields


# -- completion ----------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["planned", None])
def test_completing_needs_a_result(status):
    done = complete(status, " 客户确认预算 ", " 下周报价 ", NOW - timedelta(hours=1), NOW)
    assert (done.result, done.next_step, done.done_at) == (
        "客户确认预算",
        "下周报价",
        NOW - timedelta(hours=1),
    )
    with pytest.raises(ValidationFailed) as caught:
        complete(status, "  ", None, NOW, NOW)
    assert caught.value.field_errors == {"result": ["is required to complete an activity"]}


def test_completion_cannot_be_in_the_future_beyond_clock_skew():
    complete("planned", "ok", None, NOW + timedelta(minutes=4), NOW)
    with pytest.raises(ValidationFailed) as caught:
        complete("planned", "ok", None, NOW + timedelta(hours=1), NOW)
    assert list(caught.value.field_errors) == ["done_at"]


@pytest.mark.parametrize(
    ("status", "reason"), [("done", "activity_done"), ("cancelled", "activity_cancelled")]
)
def test_only_planned_activities_are_completed(status, reason):
    with pytest.raises(Conflict) as caught:
        complete(status, "ok", None, NOW, NOW)
    assert caught.value.details == {"reason": reason}


@pytest.mark.parametrize("status", ["done", "cancelled"])
def test_only_planned_activities_are_cancelled_or_moved(status):
    with pytest.raises(Conflict):
        check_cancel(status)
    with pytest.raises(Conflict):
        check_replan(status)
    check_cancel("planned")
    check_replan("planned")


# -- check-in ------------------------------------------------------------------------------
def test_a_visit_checks_in_with_a_position():
    found = check_in("visit", 31.230416, "121.473701", None, NOW)
    assert found == CheckIn(Decimal("31.230416"), Decimal("121.473701"), NOW)
    assert check_in("visit", Decimal("-33.8688"), 151, NOW - timedelta(minutes=1), NOW) == (
        CheckIn(Decimal("-33.868800"), Decimal("151.000000"), NOW - timedelta(minutes=1))
    )
    assert check_in("visit", None, None, None, NOW) is None
    assert check_in("call", None, None, None, NOW) is None


def test_coordinates_round_to_six_places():
    found = check_in("visit", "31.2304165", "121.4737014", None, NOW)
    assert found is not None
    assert (found.lat, found.lng) == (Decimal("31.230417"), Decimal("121.473701"))


@pytest.mark.parametrize(
    ("kind", "lat", "lng", "at", "fields"),
    [
        ("call", 31.2, 121.4, None, ["checkin_lat"]),
        ("visit", 91, 121.4, None, ["checkin_lat"]),
        ("visit", -90.5, 121.4, None, ["checkin_lat"]),
        ("visit", 31.2, 180.01, None, ["checkin_lng"]),
        ("visit", 31.2, None, None, ["checkin_lng"]),
        ("visit", None, 121.4, None, ["checkin_lat"]),
        ("visit", "north", 121.4, None, ["checkin_lat"]),
        ("visit", True, 121.4, None, ["checkin_lat"]),
        ("visit", 31.2, 121.4, NOW + timedelta(hours=1), ["checkin_at"]),
        ("visit", 100, 200, None, ["checkin_lat", "checkin_lng"]),
    ],
)
def test_bad_check_ins(kind, lat, lng, at, fields):
    with pytest.raises(ValidationFailed) as caught:
        check_in(kind, lat, lng, at, NOW)
    assert sorted(caught.value.field_errors) == fields


def test_participants_are_distinct_and_leave_out_the_owner():
    assert normalize_participants(["u2", " u3 ", "u1", "u2", ""], "u1") == ["u2", "u3"]


# -- overdue and idle ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "start", "minutes", "overdue"),
    [
        ("planned", NOW - timedelta(hours=2), 60, True),
        ("planned", NOW - timedelta(minutes=30), 60, False),
        ("planned", NOW - timedelta(hours=1), 60, False),
        ("planned", NOW + timedelta(days=1), 60, False),
        ("done", NOW - timedelta(days=2), 60, False),
        ("cancelled", NOW - timedelta(days=2), 60, False),
        ("planned", None, 60, False),
    ],
)
def test_a_planned_activity_is_overdue_after_its_planned_end(status, start, minutes, overdue):
    assert is_overdue(status, start, minutes, NOW) is overdue


def test_ends_at():
    assert ends_at(NOW, 90) == NOW + timedelta(minutes=90)


@pytest.mark.parametrize(
    ("last", "created", "days", "idle"),
    [
        (NOW - timedelta(days=15), NOW - timedelta(days=100), 14, True),
        (NOW - timedelta(days=13), NOW - timedelta(days=100), 14, False),
        (NOW - timedelta(days=14), NOW - timedelta(days=100), 14, False),
        (None, NOW - timedelta(days=20), 14, True),
        (None, NOW - timedelta(days=3), 14, False),
        (NOW - timedelta(days=2), NOW - timedelta(days=3), 1, True),
    ],
)
def test_no_activity_for_n_days(last, created, days, idle):
    assert is_idle(last, created, NOW, days) is idle


def test_idle_cutoff_and_days():
    assert idle_cutoff(NOW, 7) == NOW - timedelta(days=7)
    assert check_idle_days(30) == 30
    for bad in (0, 366, "7", 7.0, True):
        with pytest.raises(ValidationFailed) as caught:
            check_idle_days(bad)
        assert list(caught.value.field_errors) == ["days"]


def test_last_activity_moves_forward_only():
    assert last_activity_after(None, NOW) == NOW
    assert last_activity_after(NOW, NOW - timedelta(days=1)) == NOW
    assert last_activity_after(NOW - timedelta(days=1), NOW) == NOW


def test_calendar_ranges():
    check_calendar_range(NOW, NOW + timedelta(days=92))
    with pytest.raises(ValidationFailed):
        check_calendar_range(NOW, NOW)
    with pytest.raises(ValidationFailed):
        check_calendar_range(NOW, NOW + timedelta(days=93))
