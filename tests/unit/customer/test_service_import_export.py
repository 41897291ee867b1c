import csv
import io

import pytest
from sqlalchemy import func, select

from crm_common.application import UseCaseContext
from crm_common.errors import ValidationFailed
from customer.application.transfer import Transfer
from customer.models import Customer
from customer.repository import allocate_code, business_year

from .conftest import SALES

YEAR = business_year()


def rows_of(text):
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_import_creates_updates_and_reports_bad_rows_without_writing_them(
    db, service, make_customer, outbox_events
):
    existing = make_customer("上海华东机电设备有限公司", credit_code="91350100M000100Y43")
    text = "\n".join(
        [
            "code,name,status,region,phone,credit_code,tags",
            f"{existing['code']},,formal,华东/上海,,,",
            "C2019000777,北京北方五金工具有限公司,正式,华北/北京,010-66778899,,重点客户;战略合作",
            ",广州南粤阀门有限公司,potential,华南/广东/广州,+86 20 8888 0000,9144030071526726XG,",
            ",坏数据有限公司,unknown,火星,abc,,",
            ",,,,,,",
            ",深圳鹏城轴承有限公司,,,,91350100M000100Y43,",
            f"{existing['code']},,potential,,,,",
        ]
    )
    result = service.import_customers(text)
    assert result["created"] == 2
    assert result["updated"] == 2
    errors = {e["row"]: e["errors"] for e in result["errors"]}
    assert set(errors) == {5, 8}
    assert set(errors[5]) == {"status", "region", "phone"}
    assert "status" in errors[8]

    by_name = {c["name"]: c for c in service.list_customers({"limit": 200})["items"]}
    assert "坏数据有限公司" not in by_name
    beijing = by_name["北京北方五金工具有限公司"]
    assert beijing["code"] == "C2019000777"
    assert beijing["tags"] == ["重点客户", "战略合作"] and beijing["status"] == "formal"
    # Row 7 matched by credit code: it renamed the customer and left the rest alone.
    renamed = by_name["深圳鹏城轴承有限公司"]
    assert renamed["id"] == existing["id"] and renamed["status"] == "formal"
    assert renamed["region"] == "华东/上海"
    assert len(outbox_events("customer_created")) == 3
    assert service.create_customer({"name": "全新客户有限公司"})["code"] == f"C{YEAR}000003"
    with db.session() as session:
        # An imported code does not move the year's counter: allocation skips it instead.
        assert allocate_code(session, 2019) == "C2019000001"


def test_import_accepts_chinese_headers_and_labels(service):
    text = (
        "客户名称,状态,类型,地区,标签\n"
        "杭州钱江液压有限公司,正式,企业,华东/浙江/杭州,重点客户、老客户\n"
    )
    result = service.import_customers(text)
    assert result == {"created": 1, "updated": 0, "unchanged": 0, "errors": []}
    [customer] = service.list_customers({})["items"]
    assert customer["status"] == "formal" and customer["tags"] == ["重点客户", "老客户"]


@pytest.mark.parametrize(
    "text",
    ["", "colour,name\nred,x\n", "short_name\nabc\n", "name,name\na,b\n"],
)
def test_unusable_files_fail_as_a_whole(service, text):
    with pytest.raises(ValidationFailed) as info:
        service.import_customers(text)
    assert "csv" in info.value.field_errors


def test_import_refuses_names_that_exist_and_unknown_codes(service, make_customer):
    code = make_customer("上海华东机电设备有限公司")["code"]
    result = service.import_customers(
        f"code,name\n,上海华东机电设备股份有限公司\nX123,某公司\n{code},,\n"
    )
    errors = {e["row"]: e["errors"] for e in result["errors"]}
    assert "name" in errors[2] and "code" in errors[3]
    assert result["unchanged"] == 1


def test_rows_with_extra_cells_are_refused(service):
    result = service.import_customers("name,industry\n甲机电有限公司,机电,多余\n")
    assert result["created"] == 0 and result["errors"][0]["row"] == 2


def test_a_failed_import_leaves_nothing_behind(db):
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.session() as session:
        transfer = Transfer(UseCaseContext(session, _NullOutbox(), SALES))
        result = transfer.import_csv("name\n甲机电有限公司\n乙五金有限公司\n")
        assert result["created"] == 2
        raise Boom
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == 0


class _NullOutbox:
    def add(self, session, event_type, data, version=1):
        return {}


def test_export_is_excel_friendly_and_filtered(service, make_customer):
    make_customer(
        "上海华东机电设备有限公司",
        region="华东/上海",
        phone="02158881234",
        credit_code="914403001922038216",
        tags=["重点客户", "战略合作"],
        remark='=HYPERLINK("http://evil")',
    )
    make_customer("北京北方五金工具有限公司", region="华北/北京")
    text = service.export_customers({"region": "华东"})
    rows = rows_of(text)
    assert len(rows) == 1
    [row] = rows
    assert row["name"] == "上海华东机电设备有限公司"
    assert row["tags"] == "重点客户;战略合作"
    assert row["credit_code"] == "\t914403001922038216"
    assert row["remark"].startswith("'=")
    assert len(rows_of(service.export_customers({}))) == 2


@pytest.mark.parametrize("paging", [{"limit": "20"}, {"cursor": "abc"}])
def test_export_takes_no_paging(service, paging):
    with pytest.raises(ValidationFailed) as refused:
        service.export_customers(paging)
    assert set(refused.value.field_errors) == set(paging)


def test_export_then_import_changes_nothing(service, make_customer):
    make_customer(
        "上海华东机电设备有限公司",
        region="华东/上海",
        phone="+86 21 5888 1234",
        credit_code="914403001922038216",
        tags=["重点客户"],
        remark="-5% 折扣",
    )
    make_customer("北京北方五金工具有限公司", region="华北/北京", category="VIP")
    result = service.import_customers(service.export_customers({}))
    assert result == {"created": 0, "updated": 0, "unchanged": 2, "errors": []}
