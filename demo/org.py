"""Demo data: the org chart of an industrial-goods distributor, its sales regions, people,
roles, data grants and a user for each role.

``python -m demo.org [--uri URI]`` brings the database to the newest schema and, when it holds
no department and no user yet, loads the same data set every time. Every demo user signs in
with ``DEMO_PASSWORD``. The password is hashed once and the hash shared, so loading stays fast.
The customer demo assigns customers to these departments and users (see the contract of
issue 3 and ``demo.customer``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from crm_common.db import SessionScope, engine_for
from crm_common.history import created, snapshot
from crm_common.migrations import upgrade
from crm_common.models import utcnow
from crm_common.outbox import OutboxWriter
from demo import load_once
from org import events
from org.domain.permissions import CATALOG
from org.domain.trees import DEPARTMENT_PATH_SEPARATOR, REGION_PATH_SEPARATOR, Tree
from org.hashing import Passwords
from org.models import (
    DEPARTMENT_FIELDS,
    GRANT_FIELDS,
    PERSON_FIELDS,
    REGION_FIELDS,
    ROLE_FIELDS,
    USER_FIELDS,
    AuditEntry,
    DataGrant,
    Department,
    OutboxMessage,
    Person,
    Region,
    Role,
    User,
)
from org.schemas import DepartmentSchema, RegionSchema

DEMO_PASSWORD = "Crm-demo-2026"

# id, code, name, type, parent id, city, manager (person id)
DEPARTMENTS = (
    ("d-hq", "01", "总部", "operations", None, "上海", "p-ceo"),
    ("d-marketing", "0101", "市场部", "marketing", "d-hq", "上海", "p-marketing-mgr"),
    ("d-business", "0102", "商务部", "business", "d-hq", "上海", "p-business-mgr"),
    ("d-service", "0103", "客服中心", "service", "d-hq", "上海", "p-service-mgr"),
    ("d-east", "02", "华东分公司", "sales", "d-hq", "上海", "p-branch-east"),
    ("d-east-sh", "0201", "上海办事处", "sales", "d-east", "上海", None),
    ("d-east-js", "0202", "江苏办事处", "sales", "d-east", "南京", None),
    ("d-north", "03", "华北分公司", "sales", "d-hq", "北京", "p-branch-north"),
    ("d-north-bj", "0301", "北京办事处", "sales", "d-north", "北京", None),
    ("d-north-tj", "0302", "天津办事处", "sales", "d-north", "天津", None),
    ("d-south", "04", "华南分公司", "sales", "d-hq", "广州", "p-branch-south"),
    ("d-south-gd", "0401", "广东办事处", "sales", "d-south", "广州", None),
    ("d-south-xn", "0402", "西南办事处", "sales", "d-south", "成都", None),
)

# id, code, name, parent id
REGIONS = (
    ("rg-east", "HD", "华东", None),
    ("rg-east-sh", "31", "上海", "rg-east"),
    ("rg-east-js", "32", "江苏", "rg-east"),
    ("rg-east-zj", "33", "浙江", "rg-east"),
    ("rg-east-sd", "37", "山东", "rg-east"),
    ("rg-east-ah", "34", "安徽", "rg-east"),
    ("rg-east-fj", "35", "福建", "rg-east"),
    ("rg-north", "HB", "华北", None),
    ("rg-north-bj", "11", "北京", "rg-north"),
    ("rg-north-tj", "12", "天津", "rg-north"),
    ("rg-north-he", "13", "河北", "rg-north"),
    ("rg-north-sx", "14", "山西", "rg-north"),
    ("rg-south", "HN", "华南", None),
    ("rg-south-gd", "44", "广东", "rg-south"),
    ("rg-south-gx", "45", "广西", "rg-south"),
    ("rg-central", "HZ", "华中", None),
    ("rg-central-hb", "42", "湖北", "rg-central"),
    ("rg-central-hn", "43", "湖南", "rg-central"),
    ("rg-central-ha", "41", "河南", "rg-central"),
    ("rg-central-jx", "36", "江西", "rg-central"),
    ("rg-southwest", "XN", "西南", None),
    ("rg-southwest-sc", "51", "四川", "rg-southwest"),
    ("rg-southwest-cq", "50", "重庆", "rg-southwest"),
    ("rg-southwest-yn", "53", "云南", "rg-southwest"),
    ("rg-southwest-gz", "52", "贵州", "rg-southwest"),
)

# id, code, name, department id, position, mobile, email, salesperson, service engineer
PEOPLE = (
    ("p-ceo", "P0001", "徐宏伟", "d-hq", "总经理", "13901880001", "xu.hongwei", False, False),
    ("p-admin", "P0002", "赵立新", "d-hq", "系统管理员", "13901880002", "zhao.lixin", False, False),
    (
        "p-marketing-mgr",
        "P0003",
        "郑丽",
        "d-marketing",
        "市场部经理",
        "13901880003",
        "zheng.li",
        False,
        False,
    ),
    (
        "p-marketing-01",
        "P0004",
        "林晓东",
        "d-marketing",
        "市场专员",
        "13901880004",
        "lin.xiaodong",
        False,
        False,
    ),
    (
        "p-business-mgr",
        "P0005",
        "梁德明",
        "d-business",
        "商务部经理",
        "13901880005",
        "liang.deming",
        False,
        False,
    ),
    (
        "p-business-01",
        "P0006",
        "何雪梅",
        "d-business",
        "商务专员",
        "13901880006",
        "he.xuemei",
        False,
        False,
    ),
    (
        "p-service-mgr",
        "P0007",
        "罗文博",
        "d-service",
        "客服经理",
        "13901880007",
        "luo.wenbo",
        False,
        False,
    ),
    (
        "p-engineer-01",
        "P0008",
        "马春生",
        "d-service",
        "服务工程师",
        "13901880008",
        "ma.chunsheng",
        False,
        True,
    ),
    (
        "p-branch-east",
        "P0101",
        "吴振华",
        "d-east",
        "华东分公司总经理",
        "13901880101",
        "wu.zhenhua",
        True,
        False,
    ),
    (
        "p-manager-01",
        "P0102",
        "黄志强",
        "d-east",
        "销售经理",
        "13901880102",
        "huang.zhiqiang",
        True,
        False,
    ),
    (
        "p-sales-01",
        "P0103",
        "王伟",
        "d-east-sh",
        "销售代表",
        "13901880103",
        "wang.wei",
        True,
        False,
    ),
    ("p-sales-02", "P0104", "李娜", "d-east-js", "销售代表", "13901880104", "li.na", True, False),
    (
        "p-branch-north",
        "P0201",
        "孙建华",
        "d-north",
        "华北分公司总经理",
        "13901880201",
        "sun.jianhua",
        True,
        False,
    ),
    (
        "p-sales-03",
        "P0202",
        "张磊",
        "d-north-bj",
        "销售代表",
        "13901880202",
        "zhang.lei",
        True,
        False,
    ),
    (
        "p-sales-04",
        "P0203",
        "刘洋",
        "d-north-tj",
        "销售代表",
        "13901880203",
        "liu.yang",
        True,
        False,
    ),
    (
        "p-branch-south",
        "P0301",
        "郭海燕",
        "d-south",
        "华南分公司总经理",
        "13901880301",
        "guo.haiyan",
        True,
        False,
    ),
    (
        "p-sales-05",
        "P0302",
        "陈静",
        "d-south-gd",
        "销售代表",
        "13901880302",
        "chen.jing",
        True,
        False,
    ),
    (
        "p-sales-06",
        "P0303",
        "杨帆",
        "d-south-xn",
        "销售代表",
        "13901880303",
        "yang.fan",
        True,
        False,
    ),
)
EMAIL_DOMAIN = "example.com"

READ, WRITE, EXPORT = "customer:read", "customer:write", "customer:export"
MERGE, IMPORT = "customer:merge", "customer:import"
TRANSFER, CARE_ON_BEHALF = "customer:transfer", "customer:care-on-behalf"
SELLING = (
    "opportunity:read",
    "opportunity:write",
    "activity:read",
    "activity:write",
    "expense:read",
    "expense:submit",
    "forecast:read",
    "receivable:read",
    "order:read",
    "order:write",
    "contract:read",
    "contract:write",
)
"""What a salesperson does in the sales pipeline; managers add ``MANAGING``."""
MANAGING = ("expense:approve", "opportunity:reopen", "order:approve")

# id, code, name, permissions, description
ROLES = (
    ("role-admin", "admin", "系统管理员", tuple(CATALOG), "Everything, everywhere"),
    ("role-sales-rep", "sales_rep", "销售代表", (READ, WRITE, EXPORT, *SELLING), "Own customers"),
    (
        "role-sales-manager",
        "sales_manager",
        "销售经理",
        (READ, WRITE, EXPORT, MERGE, *SELLING, *MANAGING),
        None,
    ),
    (
        "role-branch-manager",
        "branch_manager",
        "分公司经理",
        (READ, WRITE, EXPORT, MERGE, IMPORT, TRANSFER, CARE_ON_BEHALF, *SELLING, *MANAGING),
        "A branch and its offices",
    ),
    (
        "role-general-manager",
        "general_manager",
        "总经理",
        (
            READ,
            EXPORT,
            "opportunity:read",
            "activity:read",
            "expense:read",
            "forecast:read",
            "receivable:read",
            "order:read",
            "contract:read",
            *MANAGING,
        ),
        "The whole company; approves what the branches cannot",
    ),
    ("role-marketing", "marketing", "市场专员", (READ, EXPORT), None),
    ("role-business", "business", "商务专员", (READ, EXPORT), None),
    ("role-service-engineer", "service_engineer", "服务工程师", (READ,), None),
    ("role-service-manager", "service_manager", "客服经理", (READ, EXPORT), None),
)


@dataclass(frozen=True)
class DemoUser:
    id: str
    username: str
    person_id: str
    department_id: str
    role: str
    """The code of the user's one role."""

    @property
    def password(self) -> str:
        return DEMO_PASSWORD


DEMO_USERS = (
    DemoUser("u-admin", "admin", "p-admin", "d-hq", "admin"),
    DemoUser("u-ceo", "ceo", "p-ceo", "d-hq", "general_manager"),
    DemoUser("u-sales-01", "sales01", "p-sales-01", "d-east-sh", "sales_rep"),
    DemoUser("u-sales-02", "sales02", "p-sales-02", "d-east-js", "sales_rep"),
    DemoUser("u-sales-03", "sales03", "p-sales-03", "d-north-bj", "sales_rep"),
    DemoUser("u-sales-04", "sales04", "p-sales-04", "d-north-tj", "sales_rep"),
    DemoUser("u-sales-05", "sales05", "p-sales-05", "d-south-gd", "sales_rep"),
    DemoUser("u-sales-06", "sales06", "p-sales-06", "d-south-xn", "sales_rep"),
    DemoUser("u-manager-01", "manager01", "p-manager-01", "d-east", "sales_manager"),
    DemoUser("u-branch-east", "branch.east", "p-branch-east", "d-east", "branch_manager"),
    DemoUser("u-branch-north", "branch.north", "p-branch-north", "d-north", "branch_manager"),
    DemoUser("u-branch-south", "branch.south", "p-branch-south", "d-south", "branch_manager"),
    DemoUser("u-marketing-01", "marketing01", "p-marketing-01", "d-marketing", "marketing"),
    DemoUser("u-business-01", "business01", "p-business-01", "d-business", "business"),
    DemoUser("u-engineer-01", "engineer01", "p-engineer-01", "d-service", "service_engineer"),
    DemoUser("u-service-mgr", "service.manager", "p-service-mgr", "d-service", "service_manager"),
)


def _dept(department_id: str) -> list[dict[str, Any]]:
    return [{"department_id": department_id, "include_children": True}]


def _region(region_id: str) -> list[dict[str, Any]]:
    return [{"region_id": region_id, "include_children": True}]


# id, name, role id, user id, departments, regions, categories, owner_self
GRANTS = (
    ("g-admin-all", "全部数据", "role-admin", None, None, None, None, False),
    ("g-sales-rep-own", "本人客户", "role-sales-rep", None, None, None, None, True),
    ("g-manager-01-own", "本人客户", None, "u-manager-01", None, None, None, True),
    (
        "g-manager-01-east-key",
        "华东分公司 A 类与 VIP 客户",
        None,
        "u-manager-01",
        _dept("d-east"),
        None,
        ["A", "VIP"],
        False,
    ),
    ("g-branch-east", "华东分公司客户", None, "u-branch-east", _dept("d-east"), None, None, False),
    (
        "g-branch-north",
        "华北分公司客户",
        None,
        "u-branch-north",
        _dept("d-north"),
        None,
        None,
        False,
    ),
    (
        "g-branch-south",
        "华南分公司客户",
        None,
        "u-branch-south",
        _dept("d-south"),
        None,
        None,
        False,
    ),
    (
        "g-marketing-01-east",
        "华东区域客户",
        None,
        "u-marketing-01",
        None,
        _region("rg-east"),
        None,
        False,
    ),
    ("g-business-all", "全部数据", "role-business", None, None, None, None, False),
    ("g-general-manager-all", "全部数据", "role-general-manager", None, None, None, None, False),
    (
        "g-engineer-01-sh",
        "上海区域客户",
        None,
        "u-engineer-01",
        None,
        _region("rg-east-sh"),
        None,
        False,
    ),
    ("g-service-manager-all", "全部数据", "role-service-manager", None, None, None, None, False),
)


def is_loaded(session: Session) -> bool:
    """Whether the database already holds an org (any department or user)."""
    return bool(
        session.scalar(select(exists().where(Department.id.is_not(None))))
        or session.scalar(select(exists().where(User.id.is_not(None))))
    )


def build_records(password_hash: str) -> dict[str, list[Any]]:
    """The data set as unsaved records per table, in an order the foreign keys accept."""
    now = utcnow()
    department_paths = Tree({row[0]: row[4] for row in DEPARTMENTS}).paths(
        {row[0]: row[2] for row in DEPARTMENTS}, DEPARTMENT_PATH_SEPARATOR
    )
    region_paths = Tree({row[0]: row[3] for row in REGIONS}).paths(
        {row[0]: row[2] for row in REGIONS}, REGION_PATH_SEPARATOR
    )
    roles = {
        code: Role(id=rid, code=code, name=name, permissions=sorted(perms), description=text)
        for rid, code, name, perms, text in ROLES
    }
    return {
        "departments": [
            Department(
                id=did,
                code=code,
                name=name,
                type=kind,
                parent_id=parent,
                city=city,
                manager_id=manager,
                path=department_paths[did],
            )
            for did, code, name, kind, parent, city, manager in DEPARTMENTS
        ],
        "regions": [
            Region(id=rid, code=code, name=name, parent_id=parent, path=region_paths[rid])
            for rid, code, name, parent in REGIONS
        ],
        "people": [
            Person(
                id=pid,
                code=code,
                name=name,
                department_id=department,
                position=position,
                mobile=mobile,
                email=f"{mail}@{EMAIL_DOMAIN}",
                is_salesperson=sales,
                is_service_engineer=engineer,
                status="active",
            )
            for pid, code, name, department, position, mobile, mail, sales, engineer in PEOPLE
        ],
        "roles": list(roles.values()),
        "users": [
            User(
                id=user.id,
                username=user.username,
                username_key=user.username.lower(),
                password_hash=password_hash,
                password_changed_at=now,
                person_id=user.person_id,
                roles=[roles[user.role]],
            )
            for user in DEMO_USERS
        ],
        "grants": [
            DataGrant(
                id=gid,
                name=name,
                role_id=role_id,
                user_id=user_id,
                departments=departments,
                regions=regions,
                categories=categories,
                owner_self=owner_self,
                # Grants list oldest first: keep them in the order they are defined here.
                created_at=now + timedelta(milliseconds=n),
                updated_at=now + timedelta(milliseconds=n),
            )
            for n, (gid, name, role_id, user_id, departments, regions, categories, owner_self) in (
                enumerate(GRANTS)
            )
        ],
    }


AUDITED = {
    "departments": ("department", DEPARTMENT_FIELDS),
    "regions": ("region", REGION_FIELDS),
    "people": ("person", PERSON_FIELDS),
    "roles": ("role", ROLE_FIELDS),
    "users": ("user", USER_FIELDS),
    "grants": ("grant", GRANT_FIELDS),
}


def load_demo(session: Session, password_hash: str, *, with_events: bool = True) -> dict[str, int]:
    """Load the data set into an org database that holds no department and no user; does
    nothing otherwise. Returns the number of records written per kind (empty when nothing was
    loaded). With ``with_events`` the outbox gets a ``department_changed`` per department, a
    ``region_changed`` per region and a ``user_changed`` per user, so other contexts hear of
    them like of any other."""
    if is_loaded(session):
        return {}
    records = build_records(password_hash)
    for kind, rows in records.items():
        session.add_all(rows)
        session.flush()
        entity_type, fields = AUDITED[kind]
        session.add_all(
            AuditEntry(
                entity_type=entity_type,
                entity_id=row.id,
                action="created",
                changes=[change.as_dict() for change in created(snapshot(row, fields))],
            )
            for row in rows
        )
    if with_events:
        writer = OutboxWriter(OutboxMessage, "org")
        schema = DepartmentSchema()
        for department in records["departments"]:
            writer.add(
                session,
                events.DEPARTMENT_CHANGED,
                events.department_changed(schema.dump(department)),
            )
        regions = RegionSchema()
        for region in records["regions"]:
            writer.add(session, events.REGION_CHANGED, events.region_changed(regions.dump(region)))
        for user in records["users"]:
            writer.add(
                session,
                events.USER_CHANGED,
                events.user_changed(user.id, user.username, user.disabled, user.authz_version),
            )
    session.flush()
    return {kind: len(rows) for kind, rows in records.items()}


def ensure_demo(
    uri: str,
    *,
    migrate: bool = True,
    with_events: bool = True,
    passwords: Passwords | None = None,
) -> dict[str, int]:
    """Migrate the database at ``uri`` and load the demo data if it holds no org yet."""
    if migrate:
        upgrade("org", uri)
    scope = SessionScope(engine_for(uri))
    with scope.session() as session:
        if is_loaded(session):
            return {}
    password_hash = (passwords or Passwords()).hash(DEMO_PASSWORD)
    with scope.session() as session:
        return load_demo(session, password_hash, with_events=with_events)


def main(argv: list[str] | None = None) -> None:
    users = f"users {', '.join(u.username for u in DEMO_USERS)} (password {DEMO_PASSWORD})"
    load_once("org", ensure_demo, argv, loaded=users, already="already holds an org")


if __name__ == "__main__":
    main()
