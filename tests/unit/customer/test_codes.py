"""Customer codes: explicit codes never move the counter, allocation skips taken codes, and a
year with no code left is a refusal."""

import pytest
from sqlalchemy import update

from crm_common.errors import Conflict, ValidationFailed
from customer.domain.codes import checked_customer_code, first_free_sequence
from customer.models import CustomerCodeCounter
from customer.repository import allocate_code, business_year, reserve_code

YEAR = business_year()


def test_first_free_sequence_skips_taken_ones_within_the_range():
    assert first_free_sequence(5, 10, {5, 6, 8}) == 7
    assert first_free_sequence(5, 7, {5, 6, 7}) is None
    assert first_free_sequence(999_998, 1_000_100, {999_998}) == 999_999
    assert first_free_sequence(999_999, 1_000_100, {999_999}) is None


@pytest.mark.parametrize("bad", ["C2026", "X2026000001", "C2026000000", "C0999000001", "C2026-1"])
def test_explicit_codes_are_checked_against_the_format(bad):
    with pytest.raises(ValidationFailed) as info:
        checked_customer_code(bad)
    assert set(info.value.field_errors) == {"code"}


def test_an_imported_code_at_the_end_of_the_range_leaves_later_creates_working(service):
    result = service.import_customers(f"code,name\nC{YEAR}999999,远端编码有限公司\n")
    assert result["created"] == 1 and result["errors"] == []
    created = service.create_customer({"name": "新建客户有限公司"})
    assert created["code"] == f"C{YEAR}000001"
    assert service.create_customer({"name": "又一家客户有限公司"})["code"] == f"C{YEAR}000002"


def test_allocation_skips_codes_taken_by_an_import(service):
    rows = "".join(f"C{YEAR}{n:06d},导入客户{n}有限公司\n" for n in (1, 2, 4))
    assert service.import_customers("code,name\n" + rows)["created"] == 3
    codes = [service.create_customer({"name": f"新客户{n}有限公司"})["code"] for n in range(3)]
    assert codes == [f"C{YEAR}000003", f"C{YEAR}000005", f"C{YEAR}000006"]


def test_allocation_skips_a_long_run_of_taken_codes(service):
    rows = "".join(f"C{YEAR}{n:06d},导入客户{n}有限公司\n" for n in range(1, 451))
    assert service.import_customers("code,name\n" + rows)["created"] == 450
    assert service.create_customer({"name": "新客户有限公司"})["code"] == f"C{YEAR}000451"


def test_an_exhausted_year_is_a_conflict_not_a_crash(db, service):
    service.import_customers(f"code,name\nC{YEAR}999999,远端编码有限公司\n")
    with db.session() as session:
        allocate_code(session, YEAR)
        session.execute(
            update(CustomerCodeCounter)
            .where(CustomerCodeCounter.year == YEAR)
            .values(last_value=999_998)
        )
    for _ in range(2):
        with pytest.raises(Conflict) as info:
            service.create_customer({"name": "新建客户有限公司"})
        assert info.value.details["reason"] == "customer_codes_exhausted"


def test_an_explicit_code_already_taken_is_refused(db, service):
    service.import_customers(f"code,name\nC{YEAR}000010,甲有限公司\n")
    with db.session() as session:
        assert reserve_code(session, f" c{YEAR}000011 ") == f"C{YEAR}000011"
        with pytest.raises(ValidationFailed):
            reserve_code(session, f"c{YEAR}000010")
