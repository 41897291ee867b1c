"""Sales routes: activities (行动), expenses (费用) and their categories, sales targets
(销售目标) and the forecast (销售预测)."""

from __future__ import annotations

from gateway.table import Body, Changes, Page, Path, Query, Row, Version

ACTIVITY = Path("activity_id")
EXPENSE = Path("expense_id")
TARGET = Path("target_id")
ACTIVITIES = ("activities",)
EXPENSES = ("expenses",)
TARGETS = ("sales targets",)
FORECAST = ("forecast",)
VERSIONED = "(optimistic locking: If-Match or body version)"
SCOPED = (
    "Every figure covers only the opportunities the caller may see, filtered as the "
    "opportunity list filters them; amounts are summed per currency. Needs forecast:read."
)
ADMIN = "Needs sales:admin."


def activity_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/activities",
            "list_activities",
            (Query(),),
            summary="Search and list activities",
            tags=ACTIVITIES,
            shape="page",
            response="Activity",
            query="ActivityQuery",
        ),
        Row(
            "POST",
            "/api/activities",
            "plan_activity",
            (Body(),),
            summary="Plan an activity, or log one already done (status done)",
            description="Completing one on an opportunity moves its last_activity_at on.",
            tags=ACTIVITIES,
            body="ActivityInput",
            response="Activity",
            status=201,
            location="/api/activities/{id}",
        ),
        Row(
            "GET",
            "/api/activities/calendar",
            "activity_calendar",
            (Query(),),
            summary="One owner's or department's activities starting in a range (92 days at "
            "most); the caller's own without either",
            tags=ACTIVITIES,
            shape="object",
            response="ActivityList",
            query="ActivityCalendarQuery",
        ),
        Row(
            "GET",
            "/api/activities/overdue",
            "overdue_activities",
            (Query(),),
            summary="Planned activities past their planned end, the longest overdue first",
            tags=ACTIVITIES,
            shape="page",
            response="Activity",
            query="OverdueActivityQuery",
        ),
        Row(
            "GET",
            "/api/activities/<activity_id>",
            "get_activity",
            (ACTIVITY,),
            summary="Get an activity",
            tags=ACTIVITIES,
            response="Activity",
        ),
        Row(
            "PATCH",
            "/api/activities/<activity_id>",
            "update_activity",
            (ACTIVITY, Changes()),
            {"expected_version": Version()},
            summary=f"Change an activity's subject, type, contact, opportunity or participants "
            f"{VERSIONED}",
            tags=ACTIVITIES,
            body="ActivityEditInput",
            response="Activity",
        ),
        Row(
            "POST",
            "/api/activities/<activity_id>/complete",
            "complete_activity",
            (ACTIVITY, Body()),
            summary="Mark a planned activity done, with its result and next step (and a "
            "visit's check-in)",
            tags=ACTIVITIES,
            body="ActivityCompletionInput",
            response="Activity",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/activities/<activity_id>/cancel",
            "cancel_activity",
            (ACTIVITY,),
            summary="Cancel a planned activity",
            tags=ACTIVITIES,
            response="Activity",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/activities/<activity_id>/replan",
            "replan_activity",
            (ACTIVITY, Changes()),
            {"expected_version": Version()},
            summary=f"Move a planned activity to another time {VERSIONED}",
            tags=ACTIVITIES,
            body="ActivityReplanInput",
            response="Activity",
        ),
        Row(
            "POST",
            "/api/activities/<activity_id>/check-in",
            "check_in_activity",
            (ACTIVITY, Body()),
            summary="Record a visit's check-in position and time",
            tags=ACTIVITIES,
            body="CheckInInput",
            response="Activity",
            errors=(409,),
        ),
        Row(
            "GET",
            "/api/activities/<activity_id>/history",
            "activity_history",
            (ACTIVITY,),
            {"cursor": Page("cursor"), "limit": Page("limit")},
            summary="Who changed what of an activity, and when",
            tags=ACTIVITIES,
            params=("cursor", "limit"),
            shape="page",
            response="HistoryEntry",
        ),
    )


def expense_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/expenses",
            "list_expenses",
            (Query(),),
            summary="List expenses: mine=true, awaiting_me=true (待我审批), by status…",
            tags=EXPENSES,
            shape="page",
            response="Expense",
            query="ExpenseQuery",
        ),
        Row(
            "POST",
            "/api/expenses",
            "submit_expense",
            (Body(),),
            summary="Submit an expense; its approvers follow the org chart",
            description="The manager of the submitter's department approves; above the "
            "second-level amount (5000 CNY unless configured) a manager further up too. "
            "409 when nobody can approve.",
            tags=EXPENSES,
            body="ExpenseInput",
            response="Expense",
            status=201,
            location="/api/expenses/{id}",
            errors=(409,),
        ),
        Row(
            "GET",
            "/api/expenses/totals",
            "expense_totals",
            (Query(),),
            summary="Expense totals grouped by person, department, month, customer or "
            "opportunity (approved and paid unless status says otherwise)",
            tags=EXPENSES,
            shape="object",
            response="ExpenseTotals",
            query="ExpenseTotalsQuery",
        ),
        Row(
            "GET",
            "/api/expenses/cost-of-sale",
            "cost_of_sale",
            (Query(),),
            summary="Cost of sale of one opportunity or customer: approved and paid expenses "
            "per category",
            tags=EXPENSES,
            shape="object",
            response="CostOfSale",
            query="CostOfSaleQuery",
        ),
        Row(
            "GET",
            "/api/expenses/categories",
            "list_expense_categories",
            (Query(),),
            summary="Expense categories (travel, entertainment, gift, sample, other…)",
            tags=EXPENSES,
            shape="object",
            response="ExpenseCategoryList",
            query="ExpenseCategoryQuery",
        ),
        Row(
            "POST",
            "/api/expenses/categories",
            "create_expense_category",
            (Body(),),
            summary="Add an expense category",
            description=ADMIN,
            tags=EXPENSES,
            body="ExpenseCategoryInput",
            response="ExpenseCategory",
            status=201,
            shape="object",
        ),
        Row(
            "PATCH",
            "/api/expenses/categories/<code>",
            "update_expense_category",
            (Path("code"), Body()),
            summary="Rename an expense category or take it out of use",
            description=ADMIN,
            tags=EXPENSES,
            body="ExpenseCategoryEditInput",
            response="ExpenseCategory",
            shape="object",
        ),
        Row(
            "GET",
            "/api/expenses/<expense_id>",
            "get_expense",
            (EXPENSE,),
            summary="Get an expense with its approval levels",
            tags=EXPENSES,
            response="Expense",
        ),
        Row(
            "POST",
            "/api/expenses/<expense_id>/approve",
            "approve_expense",
            (EXPENSE, Body()),
            summary="Approve the level waiting for me (send {} or a comment)",
            description="Nobody approves their own expense; another approver's level is 403.",
            tags=EXPENSES,
            body="ExpenseDecisionInput",
            response="Expense",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/expenses/<expense_id>/reject",
            "reject_expense",
            (EXPENSE, Body()),
            summary="Reject an expense at my level, with a comment",
            tags=EXPENSES,
            body="ExpenseDecisionInput",
            response="Expense",
            errors=(409,),
        ),
        Row(
            "POST",
            "/api/expenses/<expense_id>/pay",
            "pay_expense",
            (EXPENSE,),
            summary="Mark an approved expense paid (expense:pay)",
            tags=EXPENSES,
            response="Expense",
            errors=(409,),
        ),
        Row(
            "GET",
            "/api/expenses/<expense_id>/history",
            "expense_history",
            (EXPENSE,),
            {"cursor": Page("cursor"), "limit": Page("limit")},
            summary="Who submitted, decided and paid an expense, and when",
            tags=EXPENSES,
            params=("cursor", "limit"),
            shape="page",
            response="HistoryEntry",
        ),
    )


def target_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/sales/targets",
            "list_targets",
            (Query(),),
            summary="Sales targets of people and departments per month or quarter",
            description="Within the caller's data scope; needs forecast:read or sales:admin.",
            tags=TARGETS,
            shape="object",
            response="TargetList",
            query="TargetQuery",
        ),
        Row(
            "POST",
            "/api/sales/targets",
            "create_target",
            (Body(),),
            summary="Set a person's or department's target for a month or quarter",
            description=ADMIN,
            tags=TARGETS,
            body="TargetInput",
            response="Target",
            status=201,
            location="/api/sales/targets/{id}",
            errors=(409,),
        ),
        Row(
            "GET",
            "/api/sales/targets/<target_id>",
            "get_target",
            (TARGET,),
            summary="Get a sales target",
            tags=TARGETS,
            response="Target",
        ),
        Row(
            "PATCH",
            "/api/sales/targets/<target_id>",
            "update_target",
            (TARGET, Changes()),
            {"expected_version": Version()},
            summary=f"Change a target's amount {VERSIONED}",
            description=ADMIN,
            tags=TARGETS,
            body="TargetAmountInput",
            response="Target",
        ),
        Row(
            "DELETE",
            "/api/sales/targets/<target_id>",
            "delete_target",
            (TARGET,),
            summary="Remove a sales target",
            description=ADMIN,
            tags=TARGETS,
            shape="none",
            status=204,
        ),
    )


def forecast_rows() -> tuple[Row, ...]:
    return (
        Row(
            "GET",
            "/api/sales/forecast",
            "forecast_pipeline",
            (Query(),),
            summary="Weighted pipeline of open opportunities by owner, department, month of "
            "expected close or stage",
            description=SCOPED,
            tags=FORECAST,
            shape="object",
            response="Forecast",
            query="ForecastQuery",
        ),
        Row(
            "GET",
            "/api/sales/forecast/attainment",
            "forecast_attainment",
            (Query(),),
            summary="Won amount against target per person or department for a month or quarter",
            description=SCOPED,
            tags=FORECAST,
            shape="object",
            response="Attainment",
            query="AttainmentQuery",
        ),
        Row(
            "GET",
            "/api/sales/forecast/funnel",
            "forecast_funnel",
            (Query(),),
            summary="How far the opportunities created in a period got, and the conversion "
            "between consecutive stages",
            description=SCOPED,
            tags=FORECAST,
            shape="object",
            response="Funnel",
            query="FunnelQuery",
        ),
        Row(
            "GET",
            "/api/sales/forecast/stage-durations",
            "forecast_stage_durations",
            (Query(),),
            summary="Average days per stage over the stays that ended in a period",
            description=SCOPED,
            tags=FORECAST,
            shape="object",
            response="StageDurations",
            query="StageDurationQuery",
        ),
        Row(
            "GET",
            "/api/sales/forecast/win-rates",
            "forecast_win_rates",
            (Query(),),
            summary="Win rate by owner or department, and lost opportunities by loss reason",
            description=SCOPED,
            tags=FORECAST,
            shape="object",
            response="WinRates",
            query="WinRateQuery",
        ),
    )


ROWS: tuple[Row, ...] = (*activity_rows(), *expense_rows(), *target_rows(), *forecast_rows())
