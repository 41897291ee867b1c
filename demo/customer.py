"""Demo data: an industrial-goods distributor's customer book (about 300 customers).

``python -m demo.customer [--uri URI]`` brings the database to the newest schema and, when it
holds no customer yet, loads the same data set every time (seeded random): Chinese company
names across 华东/华北/华南/华中/西南, valid credit codes and mobiles, contacts, group
relationships, partners, care records and history, owned by the demo users below.

Owners and departments follow the org service's demo chart: each customer belongs to the sales
office covering its city and that office's salesperson, except about 40% of the VIP customers,
which the 华东 sales manager keeps at branch level.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from crm_common.db import SessionScope, engine_for
from crm_common.ids import BUSINESS_TZ
from crm_common.migrations import upgrade
from crm_common.outbox import OutboxWriter
from customer import events
from customer.domain.codes import format_customer_code
from customer.domain.credit_code import ALPHABET, make_credit_code
from customer.domain.names import normalize_company_name
from customer.domain.phones import phone_key
from customer.domain.regions import within
from customer.domain.relationships import canonical_key
from customer.models import (
    CareRecord,
    Contact,
    Customer,
    CustomerCodeCounter,
    CustomerTag,
    HistoryEntry,
    OutboxMessage,
    Relationship,
)
from customer.schemas import ContactSchema, CustomerSchema
from demo import load_once

SEED = 20260101
CUSTOMER_COUNT = 300
DEMO_START = datetime(2025, 1, 6, 1, 30, tzinfo=UTC)
DEMO_END = datetime(2026, 10, 30, 9, 0, tzinfo=UTC)

SALES_OFFICES = (
    # (department, salesperson, the regions it covers with everything below them)
    ("d-east-sh", "u-sales-01", ("华东/上海", "华东/浙江", "华东/安徽", "华东/福建")),
    ("d-east-js", "u-sales-02", ("华东/江苏", "华东/山东")),
    ("d-north-bj", "u-sales-03", ("华北/北京", "华北/河北", "华北/山西")),
    ("d-north-tj", "u-sales-04", ("华北/天津",)),
    ("d-south-gd", "u-sales-05", ("华南/广东",)),
    ("d-south-xn", "u-sales-06", ("华南/广西", "西南", "华中")),
)
MANAGER = ("u-manager-01", "d-east")
VIP_KEPT_BY_MANAGER = 0.4
DEPARTMENTS = (*(office[0] for office in SALES_OFFICES), MANAGER[1])
DEMO_USERS = (*(office[1] for office in SALES_OFFICES), MANAGER[0])


@dataclass(frozen=True)
class City:
    area: str
    province: str | None
    name: str
    abbr: str
    division: str
    area_code: str
    district: str

    @property
    def region(self) -> str:
        parts = [self.area, self.province, self.name] if self.province else [self.area, self.name]
        return "/".join(parts)

    @property
    def office(self) -> tuple[str, str]:
        """(department, salesperson) of the sales office covering the city."""
        for department, owner, covered in SALES_OFFICES:
            if any(within(self.region, region) for region in covered):
                return department, owner
        raise LookupError(f"no sales office covers {self.region}")

    def address(self, rng: random.Random) -> str:
        prefix = f"{self.province}省" if self.province and self.province != "广西" else ""
        if self.province == "广西":
            prefix = "广西壮族自治区"
        road = rng.choice(ROADS)
        return f"{prefix}{self.name}市{self.district}{road}{rng.randint(1, 888)}号"


CITIES = (
    City("华东", None, "上海", "sh", "310115", "021", "浦东新区"),
    City("华东", "江苏", "南京", "nj", "320115", "025", "江宁区"),
    City("华东", "江苏", "苏州", "sz", "320571", "0512", "工业园区"),
    City("华东", "江苏", "无锡", "wx", "320214", "0510", "新吴区"),
    City("华东", "江苏", "常州", "cz", "320412", "0519", "武进区"),
    City("华东", "浙江", "杭州", "hz", "330109", "0571", "萧山区"),
    City("华东", "浙江", "宁波", "nb", "330206", "0574", "北仑区"),
    City("华东", "浙江", "温州", "wz", "330304", "0577", "瓯海区"),
    City("华东", "山东", "济南", "jn", "370112", "0531", "历城区"),
    City("华东", "山东", "青岛", "qd", "370211", "0532", "黄岛区"),
    City("华东", "安徽", "合肥", "hf", "340111", "0551", "包河区"),
    City("华东", "福建", "厦门", "xm", "350211", "0592", "集美区"),
    City("华北", None, "北京", "bj", "110115", "010", "大兴区"),
    City("华北", None, "天津", "tj", "120116", "022", "滨海新区"),
    City("华北", "河北", "石家庄", "sjz", "130108", "0311", "裕华区"),
    City("华北", "河北", "唐山", "ts", "130203", "0315", "路北区"),
    City("华北", "山西", "太原", "ty", "140105", "0351", "小店区"),
    City("华南", "广东", "广州", "gz", "440112", "020", "黄埔区"),
    City("华南", "广东", "深圳", "szn", "440306", "0755", "宝安区"),
    City("华南", "广东", "佛山", "fs", "440606", "0757", "顺德区"),
    City("华南", "广东", "东莞", "dg", "441900", "0769", "长安镇"),
    City("华南", "广西", "南宁", "nn", "450107", "0771", "西乡塘区"),
    City("华中", "湖北", "武汉", "wh", "420112", "027", "东西湖区"),
    City("华中", "湖南", "长沙", "cs", "430111", "0731", "雨花区"),
    City("华中", "河南", "郑州", "zz", "410171", "0371", "经开区"),
    City("华中", "江西", "南昌", "nc", "360111", "0791", "青山湖区"),
    City("西南", "四川", "成都", "cd", "510107", "028", "武侯区"),
    City("西南", None, "重庆", "cq", "500112", "023", "渝北区"),
    City("西南", "云南", "昆明", "km", "530111", "0871", "官渡区"),
    City("西南", "贵州", "贵阳", "gy", "520113", "0851", "白云区"),
)
ROADS = (
    "工业大道",
    "科技路",
    "创业路",
    "兴业路",
    "发展大道",
    "高新路",
    "长江路",
    "黄河路",
    "机场路",
    "经三路",
    "纬二路",
    "新港路",
    "园区路",
    "开发大道",
)
TRADE_NAMES = (
    ("恒达", "hengda"),
    ("华力", "huali"),
    ("精工", "jinggong"),
    ("宏远", "hongyuan"),
    ("鑫源", "xinyuan"),
    ("永盛", "yongsheng"),
    ("联创", "lianchuang"),
    ("金桥", "jinqiao"),
    ("瑞丰", "ruifeng"),
    ("凯盛", "kaisheng"),
    ("天润", "tianrun"),
    ("博远", "boyuan"),
    ("鼎新", "dingxin"),
    ("汇通", "huitong"),
    ("腾飞", "tengfei"),
    ("佳诚", "jiacheng"),
    ("合力", "heli"),
    ("兴业", "xingye"),
    ("广源", "guangyuan"),
    ("万通", "wantong"),
    ("东升", "dongsheng"),
    ("嘉禾", "jiahe"),
    ("信达", "xinda"),
    ("泰和", "taihe"),
    ("龙盛", "longsheng"),
    ("飞跃", "feiyue"),
    ("新锐", "xinrui"),
    ("众诚", "zhongcheng"),
    ("源丰", "yuanfeng"),
    ("宝隆", "baolong"),
    ("富通", "futong"),
    ("昌盛", "changsheng"),
    ("通达", "tongda"),
    ("德润", "derun"),
    ("启航", "qihang"),
    ("明辉", "minghui"),
    ("顺发", "shunfa"),
    ("安泰", "antai"),
    ("金盛", "jinsheng"),
    ("立信", "lixin"),
    ("华宇", "huayu"),
    ("恒信", "hengxin"),
    ("远航", "yuanhang"),
    ("聚力", "juli"),
    ("华东", "huadong"),
    ("华北", "huabei"),
    ("华南", "huanan"),
)
LINES = (
    ("机电设备", "机电设备"),
    ("五金工具", "五金工具"),
    ("轴承", "轴承"),
    ("阀门", "阀门管件"),
    ("液压设备", "液压气动"),
    ("电气", "电气设备"),
    ("自动化设备", "工业自动化"),
    ("工具", "五金工具"),
    ("机械", "通用机械"),
    ("紧固件", "紧固件"),
    ("仪器仪表", "仪器仪表"),
    ("流体设备", "流体控制"),
    ("传动设备", "机械传动"),
    ("工业品", "工业品综合"),
    ("焊接设备", "焊接切割"),
)
LEGAL_SUFFIXES = ("有限公司",) * 6 + (
    "有限责任公司",
    "股份有限公司",
    "贸易有限公司",
    "销售有限公司",
    "科技有限公司",
)
SURNAMES = (
    ("王", "wang"),
    ("李", "li"),
    ("张", "zhang"),
    ("刘", "liu"),
    ("陈", "chen"),
    ("杨", "yang"),
    ("黄", "huang"),
    ("赵", "zhao"),
    ("周", "zhou"),
    ("吴", "wu"),
    ("徐", "xu"),
    ("孙", "sun"),
    ("马", "ma"),
    ("朱", "zhu"),
    ("胡", "hu"),
    ("郭", "guo"),
    ("何", "he"),
    ("林", "lin"),
    ("高", "gao"),
    ("罗", "luo"),
    ("郑", "zheng"),
    ("梁", "liang"),
    ("谢", "xie"),
    ("宋", "song"),
    ("唐", "tang"),
    ("韩", "han"),
    ("冯", "feng"),
    ("邓", "deng"),
    ("曹", "cao"),
    ("欧阳", "ouyang"),
)
GIVEN_NAMES = (
    ("建国", "jianguo"),
    ("建华", "jianhua"),
    ("国强", "guoqiang"),
    ("志强", "zhiqiang"),
    ("伟", "wei"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("娟", "juan"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀英", "xiuying"),
    ("海燕", "haiyan"),
    ("晓东", "xiaodong"),
    ("文博", "wenbo"),
    ("雪梅", "xuemei"),
    ("春生", "chunsheng"),
    ("立新", "lixin"),
    ("红梅", "hongmei"),
    ("德明", "deming"),
    ("振华", "zhenhua"),
    ("玉兰", "yulan"),
    ("宏伟", "hongwei"),
)
ROLES = (
    ("总经理", "总经办", "decision_maker"),
    ("副总经理", "总经办", "decision_maker"),
    ("采购经理", "采购部", "buyer"),
    ("采购员", "采购部", "buyer"),
    ("设备部主管", "设备部", "influencer"),
    ("技术工程师", "技术部", "user"),
    ("生产主管", "生产部", "user"),
    ("财务经理", "财务部", "gatekeeper"),
    ("仓库主管", "仓储部", "user"),
    ("总经理助理", "总经办", "gatekeeper"),
)
MOBILE_PREFIXES = (
    "130",
    "131",
    "132",
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "155",
    "156",
    "158",
    "159",
    "177",
    "180",
    "182",
    "185",
    "186",
    "187",
    "188",
    "189",
    "199",
)
TAGS = (
    "重点客户",
    "战略合作",
    "年采购>100万",
    "新客户",
    "价格敏感",
    "账期客户",
    "招投标",
    "OEM配套",
    "老客户",
    "设备改造项目",
)
STATUSES = (("formal", 55), ("potential", 25), ("dormant", 12), ("disabled", 8))
CATEGORIES = (("A", 20), ("B", 40), ("C", 30), ("VIP", 10))
CREDIT_LEVELS = (("AAA", 10), ("AA", 25), ("A", 35), ("B", 20), ("C", 10))
CARE_NOTES = {
    "festival": ("春节礼盒：茶叶两盒", "中秋月饼礼盒", "端午粽子礼盒", "元旦贺卡及台历"),
    "visit": (
        "上门拜访，了解下季度设备改造计划",
        "陪同技术工程师现场解决轴承异响问题",
        "拜访采购部，沟通年度框架协议",
        "新产品推介会后回访",
    ),
    "call": ("电话回访产品使用情况", "电话确认到货及安装情况", "电话沟通账期与对账事宜"),
    "gift": ("赠送公司定制工具套装", "赠送年度产品选型手册"),
    "other": ("邀请参加年度客户答谢会",),
}
FESTIVALS = (date(2025, 1, 24), date(2025, 10, 3), date(2026, 2, 12), date(2026, 9, 22))


def _weighted(rng: random.Random, options: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _org_code(rng: random.Random) -> str:
    """A 9-character organisation code (GB 11714) with its own check character."""
    letters = [c for c in ALPHABET if c.isalpha()]
    if rng.random() < 0.5:
        body = "MA" + "".join(rng.choice(ALPHABET) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(7)) + rng.choice(letters + ["0"])
    values = [int(c) if c.isdigit() else ord(c) - ord("A") + 10 for c in body]
    check = 11 - sum(v * w for v, w in zip(values, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


class _Generator:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.mobiles: set[str] = set()
        self.phones: set[str] = set()
        self.name_keys: set[str] = set()
        self.credit_codes: set[str] = set()

    def mobile(self) -> str:
        while True:
            number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if number not in self.mobiles:
                self.mobiles.add(number)
                return number

    def landline(self, city: City) -> str:
        digits = 8 if len(city.area_code) == 3 or self.rng.random() < 0.7 else 7
        while True:
            local = str(self.rng.randint(2, 8)) + "".join(
                str(self.rng.randrange(10)) for _ in range(digits - 1)
            )
            number = f"{city.area_code}-{local}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def credit_code(self, city: City) -> str:
        while True:
            code = make_credit_code("91" + city.division + _org_code(self.rng))
            if code not in self.credit_codes:
                self.credit_codes.add(code)
                return code

    def company_name(self, city: City) -> tuple[str, str, str, str]:
        while True:
            trade, trade_py = self.rng.choice(TRADE_NAMES)
            line, industry = self.rng.choice(LINES)
            name = f"{city.name}{trade}{line}{self.rng.choice(LEGAL_SUFFIXES)}"
            key = normalize_company_name(name)
            if key not in self.name_keys:
                self.name_keys.add(key)
                return name, f"{trade}{line[:2]}", industry, trade_py

    def person(self) -> tuple[str, str]:
        surname, surname_py = self.rng.choice(SURNAMES)
        given, given_py = self.rng.choice(GIVEN_NAMES)
        return surname + given, f"{given_py}.{surname_py}"

    def timestamps(self, count: int) -> Iterator[datetime]:
        span = (DEMO_END - DEMO_START).total_seconds()
        for i in range(count):
            base = DEMO_START.timestamp() + span * i / count
            yield datetime.fromtimestamp(base + self.rng.randint(0, 3600 * 6), UTC)


def build() -> dict[str, list[dict[str, Any]]]:
    """The data set as rows per table (no database needed)."""
    gen = _Generator()
    rng = gen.rng
    customers: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    contacts: list[dict[str, Any]] = []
    care: list[dict[str, Any]] = []
    rels: list[dict[str, Any]] = []
    sequences: dict[int, int] = {}
    groups: list[tuple[dict[str, Any], str, str, City, str]] = []
    subsidiaries: list[tuple[int, dict[str, Any]]] = []

    for index, created_at in enumerate(gen.timestamps(CUSTOMER_COUNT)):
        city = rng.choice(CITIES)
        year = created_at.astimezone(BUSINESS_TZ).year
        sequences[year] = sequences.get(year, 0) + 1
        individual = index % 37 == 5
        department, owner = city.office
        category = _weighted(rng, CATEGORIES)
        if category == "VIP" and rng.random() < VIP_KEPT_BY_MANAGER:
            owner, department = MANAGER
        if individual:
            person, _ = gen.person()
            name, short, industry, trade_py = person, None, "设备维修", None
        elif index % 23 == 3 and len(groups) < 10:
            trade, trade_py = TRADE_NAMES[len(groups) * 3 % len(TRADE_NAMES)]
            line, industry = LINES[len(groups) % len(LINES)]
            name = f"{trade}{line}集团有限公司"
            gen.name_keys.add(normalize_company_name(name))
            short = f"{trade}集团"
        elif (
            index % 23 in (9, 16)
            and groups
            and normalize_company_name(f"{groups[-1][1]}{groups[-1][4]}({city.name})")
            not in gen.name_keys
        ):
            parent, trade, trade_py, _, line = groups[-1]
            name = f"{trade}{line}({city.name})有限公司"
            gen.name_keys.add(normalize_company_name(name))
            short, industry = f"{trade}{city.name}", parent["industry"]
            subsidiaries.append((index, parent))
        else:
            name, short, industry, trade_py = gen.company_name(city)
        status = _weighted(rng, STATUSES)
        customer = {
            "id": _uuid(rng),
            "code": format_customer_code(year, sequences[year]),
            "name": name,
            "name_key": normalize_company_name(name),
            "short_name": short,
            "kind": "individual" if individual else "enterprise",
            "status": status,
            "category": category,
            "industry": industry,
            "region": city.region,
            "address": city.address(rng),
            "phone": gen.mobile() if individual else gen.landline(city),
            "credit_code": None if individual else gen.credit_code(city),
            "credit_level": _weighted(rng, CREDIT_LEVELS),
            "owner_id": owner,
            "department_id": department,
            "remark": "个人客户，承接设备维修项目" if individual else None,
            "merged_into_id": None,
            "created_at": created_at,
            "updated_at": created_at,
            "version": 1,
        }
        customer["phone_key"] = phone_key(customer["phone"])
        customer_tags = rng.sample(TAGS, k=rng.choice((0, 1, 1, 2, 2, 3)))
        if category == "VIP" and "重点客户" not in customer_tags:
            customer_tags.insert(0, "重点客户")
        customer["tags"] = customer_tags
        tags += [
            {"customer_id": customer["id"], "tag": tag, "position": pos}
            for pos, tag in enumerate(customer_tags)
        ]
        customers.append(customer)
        if name.endswith("集团有限公司"):
            groups.append((customer, trade, trade_py, city, line))

        domain = f"{trade_py}-{city.abbr}.com.cn" if trade_py else None
        people = 1 if individual else rng.choice((1, 2, 2, 3, 3, 4))
        roles = rng.sample(ROLES, k=people)
        for n in range(people):
            if individual:
                person, title, dept, role = name, None, None, "decision_maker"
            else:
                person, _ = gen.person()
                title, dept, role = roles[n]
            born = date(rng.randint(1965, 1998), rng.randint(1, 12), rng.randint(1, 28))
            contact = {
                "id": _uuid(rng),
                "customer_id": customer["id"],
                "name": person,
                "title": title,
                "department": dept,
                "mobile": gen.mobile(),
                "phone": customer["phone"] if not individual and n == 0 else None,
                "email": f"{_email_name(person)}@{domain}" if domain else None,
                "birthday": born if rng.random() < 0.6 else None,
                "is_primary": n == 0,
                "purchase_role": role,
                "remark": None,
                "created_at": created_at + timedelta(minutes=5 + n),
                "updated_at": created_at + timedelta(minutes=5 + n),
                "version": 1,
            }
            contacts.append(contact)
            if contact["birthday"] and contact["is_primary"] and status in ("formal", "dormant"):
                day = contact["birthday"].replace(year=2026)
                if created_at.date() < day < DEMO_END.date():
                    care.append(
                        _care(rng, customer, "birthday", day, "生日祝福短信+蛋糕券", contact)
                    )

        if status in ("formal", "dormant"):
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                kind = rng.choice(("festival", "visit", "visit", "call", "gift", "other"))
                if kind == "festival":
                    later = [d for d in FESTIVALS if d > created_at.date()]
                    if not later:
                        continue
                    day = rng.choice(later)
                else:
                    window = (DEMO_END.date() - created_at.date()).days
                    if window <= 0:
                        continue
                    day = created_at.date() + timedelta(days=rng.randint(0, window))
                care.append(_care(rng, customer, kind, day, rng.choice(CARE_NOTES[kind])))

    keys: set[tuple] = set()

    def link(from_c: dict[str, Any], to_c: dict[str, Any], kind: str, note: str | None) -> None:
        key = canonical_key(from_c["id"], to_c["id"], kind)
        if from_c["id"] == to_c["id"] or key in keys:
            return
        keys.add(key)
        at = max(from_c["created_at"], to_c["created_at"]) + timedelta(hours=1)
        rels.append(
            {
                "id": _uuid(rng),
                "from_customer_id": from_c["id"],
                "to_customer_id": to_c["id"],
                "kind": kind,
                "note": note,
                "created_by": from_c["owner_id"],
                "created_at": at,
                "updated_at": at,
                "version": 1,
            }
        )

    enterprises = [c for c in customers if c["kind"] == "enterprise" and "集团" not in c["name"]]
    for index, parent in subsidiaries:
        link(customers[index], parent, "parent", "集团全资子公司，执行集团框架协议价")
    for parent, *_ in groups:
        for child in rng.sample(enterprises, k=rng.randint(1, 2)):
            link(parent, child, "partner", "集团长期合作供应商")
    for _ in range(15):
        a, b = rng.sample(enterprises, k=2)
        link(a, b, "partner", rng.choice(("联合投标", "互为代理", "项目合作伙伴")))
    for _ in range(15):
        a, b = rng.sample(enterprises, k=2)
        link(a, b, "influences", rng.choice(("设计院推荐品牌", "总包方指定供应商", "老客户转介绍")))

    history = [
        {
            "id": _uuid(rng),
            "customer_id": c["id"],
            "entity_type": "customer",
            "entity_id": str(c["id"]),
            "change": "created",
            "actor_id": c["owner_id"],
            "field": None,
            "old": None,
            "new": {"code": c["code"], "name": c["name"], "status": c["status"]},
            "at": c["created_at"],
        }
        for c in customers
    ]
    counters = [{"year": year, "last_value": last} for year, last in sorted(sequences.items())]
    return {
        "customers": customers,
        "customer_tags": tags,
        "contacts": contacts,
        "customer_relationships": rels,
        "care_records": care,
        "history_entries": history,
        "customer_code_counters": counters,
    }


def _email_name(person: str) -> str:
    for surname, py in sorted(SURNAMES, key=lambda s: -len(s[0])):
        if person.startswith(surname):
            given = person[len(surname) :]
            given_py = dict(GIVEN_NAMES).get(given, "x")
            return f"{given_py}.{py}"
    return "contact"


def _care(
    rng: random.Random,
    customer: dict[str, Any],
    kind: str,
    day: date,
    note: str,
    contact: dict[str, Any] | None = None,
) -> dict[str, Any]:
    at = datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)
    return {
        "id": _uuid(rng),
        "customer_id": customer["id"],
        "contact_id": contact["id"] if contact else None,
        "kind": kind,
        "date": day,
        "note": note,
        "by_user_id": customer["owner_id"],
        "created_at": at,
        "updated_at": at,
        "version": 1,
    }


def load_demo(session: Session, *, with_events: bool = True) -> dict[str, int]:
    """Load the data set into an empty customer database; does nothing if it has customers.

    Returns the number of rows written per table (empty when nothing was loaded). With
    ``with_events`` the outbox also gets a ``customer_created`` / ``contact_created`` event per
    record, so other contexts hear of the demo customers like of any other."""
    if session.scalar(select(func.count()).select_from(Customer)):
        return {}
    data = build()
    columns = {c.key for c in Customer.__table__.columns}
    session.execute(
        insert(Customer), [{k: v for k, v in c.items() if k in columns} for c in data["customers"]]
    )
    for model in (
        CustomerTag,
        Contact,
        Relationship,
        CareRecord,
        HistoryEntry,
        CustomerCodeCounter,
    ):
        rows = data[model.__tablename__]
        if rows:
            session.execute(insert(model), rows)
    if with_events:
        writer = OutboxWriter(OutboxMessage, "customer")
        customer_schema, contact_schema = CustomerSchema(), ContactSchema()
        for customer in data["customers"]:
            writer.add(
                session,
                events.CUSTOMER_CREATED,
                events.customer_created(customer_schema.dump(customer)),
            )
        for contact in data["contacts"]:
            writer.add(
                session,
                events.CONTACT_CREATED,
                events.contact_created(contact_schema.dump(contact)),
            )
    session.flush()
    return {name: len(rows) for name, rows in data.items()}


def ensure_demo(uri: str, *, migrate: bool = True, with_events: bool = True) -> dict[str, int]:
    """Migrate the database at ``uri`` and load the demo data if it has no customers."""
    if migrate:
        upgrade("customer", uri)
    with SessionScope(engine_for(uri)).session() as session:
        return load_demo(session, with_events=with_events)


def main(argv: list[str] | None = None) -> None:
    owners = f"owners {', '.join(DEMO_USERS)}"
    load_once("customer", ensure_demo, argv, loaded=owners, already="already has customers")


if __name__ == "__main__":
    main()
