"""A small organisation in sales' copies of org and customer, and principals acting in it.

Departments: 销售部 ``d-sales`` (manager 王总) over 华东区 ``d-east`` (manager 李经理) over
上海办 ``d-east-sh`` (manager 陈主管), and 华南区 ``d-south`` over 广州办 ``d-south-gz``.
Salespeople: 张伟 ``u-sales-01`` and 刘洋 ``u-sales-02`` in Shanghai, 黄磊 ``u-gz-01`` in
Guangzhou. Customers: 华东机电 (张伟's, with two contacts), 上海精工 (刘洋's), 广州重工
(黄磊's) and 旧华东 (merged into 华东机电).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from crm_common.context import Principal
from sales.application.read_models import ReadModels

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

EAST_MACHINERY = uuid.UUID("00000000-0000-4000-8000-00000000c001")
SHANGHAI_PRECISION = uuid.UUID("00000000-0000-4000-8000-00000000c002")
GUANGZHOU_HEAVY = uuid.UUID("00000000-0000-4000-8000-00000000c003")
OLD_EAST = uuid.UUID("00000000-0000-4000-8000-00000000c004")
BUYER = uuid.UUID("00000000-0000-4000-8000-0000000000a1")
"""A contact of 华东机电: 王经理, purchasing manager."""
ENGINEER = uuid.UUID("00000000-0000-4000-8000-0000000000a2")
"""A contact of 华东机电: 赵工, chief engineer."""
GUANGZHOU_BUYER = uuid.UUID("00000000-0000-4000-8000-0000000000a3")

DEPARTMENTS = (
    ("d-sales", None, "p-boss", "销售部"),
    ("d-east", "d-sales", "p-east-mgr", "销售部/华东区"),
    ("d-east-sh", "d-east", "p-sh-mgr", "销售部/华东区/上海办"),
    ("d-south", "d-sales", "p-south-mgr", "销售部/华南区"),
    ("d-south-gz", "d-south", None, "销售部/华南区/广州办"),
)
PEOPLE = (
    ("p-boss", "u-boss", "王总", "d-sales"),
    ("p-east-mgr", "u-east-mgr", "李经理", "d-east"),
    ("p-sh-mgr", "u-sh-mgr", "陈主管", "d-east-sh"),
    ("p-sales-01", "u-sales-01", "张伟", "d-east-sh"),
    ("p-sales-02", "u-sales-02", "刘洋", "d-east-sh"),
    ("p-south-mgr", "u-south-mgr", "周经理", "d-south"),
    ("p-gz-01", "u-gz-01", "黄磊", "d-south-gz"),
)
CUSTOMERS = (
    (EAST_MACHINERY, "C2026000001", "上海华东机电设备有限公司", "华东机电", "u-sales-01",
     "d-east-sh", "华东/上海", "A"),
    (SHANGHAI_PRECISION, "C2026000002", "上海精工轴承有限公司", "上海精工", "u-sales-02",
     "d-east-sh", "华东/上海", "B"),
    (GUANGZHOU_HEAVY, "C2026000003", "广州重工机械有限公司", "广州重工", "u-gz-01",
     "d-south-gz", "华南/广州", "A"),
    (OLD_EAST, "C2025000099", "上海华东机电设备厂", "旧华东", "u-sales-01",
     "d-east-sh", "华东/上海", "A"),
)  # fmt: skip
CONTACTS = (
    (BUYER, EAST_MACHINERY, "王经理", "采购经理", "13812345678"),
    (ENGINEER, EAST_MACHINERY, "赵工", "总工程师", "13812345679"),
    (GUANGZHOU_BUYER, GUANGZHOU_HEAVY, "林经理", "采购经理", "13912345678"),
)

OPPORTUNITY_PERMISSIONS = ("opportunity:read", "opportunity:write")
SALES_PERMISSIONS = (
    *OPPORTUNITY_PERMISSIONS,
    "activity:read",
    "activity:write",
    "expense:read",
    "expense:submit",
    "forecast:read",
)
MANAGER_PERMISSIONS = (*SALES_PERMISSIONS, "expense:approve", "opportunity:reopen")
ADMIN_PERMISSIONS = (
    *MANAGER_PERMISSIONS,
    "expense:pay",
    "sales:admin",
)

SALES = Principal(
    user_id="u-sales-01",
    department_id="d-east-sh",
    roles=("sales",),
    permissions=SALES_PERMISSIONS,
    grants=({"owner": "self"},),
)
COLLEAGUE = Principal(
    user_id="u-sales-02",
    department_id="d-east-sh",
    roles=("sales",),
    permissions=SALES_PERMISSIONS,
    grants=({"owner": "self"},),
)
OTHER_OFFICE = Principal(
    user_id="u-gz-01",
    department_id="d-south-gz",
    roles=("sales",),
    permissions=SALES_PERMISSIONS,
    grants=({"owner": "self"},),
)
MANAGER = Principal(
    user_id="u-sh-mgr",
    department_id="d-east-sh",
    roles=("manager",),
    permissions=MANAGER_PERMISSIONS,
    grants=({"departments": ["d-east-sh"]},),
)
ADMIN = Principal(
    user_id="u-admin",
    department_id="d-sales",
    roles=("admin",),
    permissions=ADMIN_PERMISSIONS,
    grants=({},),
)


def seed(session) -> None:
    """Fill sales' copies of org and customer with the sample organisation."""
    copies = ReadModels(session, now=T0)
    for department_id, parent_id, manager_id, path in DEPARTMENTS:
        copies.keep_department(
            {
                "id": department_id,
                "code": department_id,
                "name": path.rsplit("/", 1)[-1],
                "parent_id": parent_id,
                "manager_id": manager_id,
                "path": path,
                "version": 1,
            }
        )
    for index, (person_id, user_id, name, department_id) in enumerate(PEOPLE, start=1):
        copies.keep_person(
            {
                "id": person_id,
                "user_id": user_id,
                "code": f"P{index:04d}",
                "name": name,
                "department_id": department_id,
                "version": 1,
                "updated_at": T0.isoformat(),
            }
        )
    for customer_id, code, name, short, owner, department, region, category in CUSTOMERS:
        copies.keep_customer(
            {
                "id": str(customer_id),
                "code": code,
                "name": name,
                "short_name": short,
                "status": "formal",
                "category": category,
                "region": region,
                "owner_id": owner,
                "department_id": department,
                "version": 1,
                "updated_at": T0.isoformat(),
            }
        )
    for contact_id, customer_id, name, title, mobile in CONTACTS:
        copies.keep_contact(
            {
                "id": str(contact_id),
                "customer_id": str(customer_id),
                "name": name,
                "title": title,
                "mobile": mobile,
                "version": 1,
                "updated_at": T0.isoformat(),
            }
        )
    copies.merge(
        {
            "survivor_id": str(EAST_MACHINERY),
            "merged_id": str(OLD_EAST),
            "merged_code": "C2025000099",
            "survivor": {
                "id": str(EAST_MACHINERY),
                "code": "C2026000001",
                "name": "上海华东机电设备有限公司",
                "short_name": "华东机电",
                "status": "formal",
                "category": "A",
                "region": "华东/上海",
                "owner_id": "u-sales-01",
                "department_id": "d-east-sh",
                "version": 1,
                "updated_at": T0.isoformat(),
            },
        },
        "u-admin",
    )
