"""Demo data: the sales pipeline of the demo distributor over the year up to ``DEMO_NOW``.

``python -m demo.sales [--uri URI]`` brings the sales database to the newest schema and, when it
holds no opportunity yet, loads the same data set every time (seeded random):

- sales' copies of the org chart (departments, regions, people with their user accounts) and of
  the customer book (customers, contacts), exactly as org's and customer's snapshots would
  bring them (same records, same versions), so the pipeline is usable before the catch-up ran;
  the catch-up still runs and finds nothing newer;
- the standard sales process and the default loss reasons as the service stores them on its
  first start (unless they exist), competitors and expense categories where missing;
- about 400 opportunities over the demo customers, owned like their customers, with stage
  history moved through the domain's own rules (required fields, moves back with a reason,
  closing as won, lost or abandoned), product lines, contacts and competitors;
- activities done and planned (some overdue, visits with their check-in position), expenses
  submitted, approved, rejected and paid along the approval chain the domain derives from the
  org chart, and monthly targets for 2026 per salesperson and per department.

Customers, contacts, owners and departments come from ``demo.customer`` and ``demo.org`` (their
deterministic data, not their databases). The data set describes the moment ``DEMO_NOW``: what
was planned after it is still planned, what was due before it and not done is overdue. Sales
records are not announced on the bus (nothing consumes them yet): the demo writes their creation
into the history table and nothing into the outbox.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, insert, select
from sqlalchemy.orm import Session

from crm_common.db import SessionScope, engine_for
from crm_common.history import jsonable
from crm_common.ids import BUSINESS_TZ
from crm_common.migrations import upgrade
from customer.schemas import ContactSchema, CustomerSchema
from demo import customer as customer_demo
from demo import load_once
from demo import org as org_demo
from demo.sales_orders import load_orders
from demo.sales_quotes import load_quotes
from demo.sales_receivables import load_receivables
from sales.application.competitors import DEFAULT_LOSS_REASONS
from sales.application.processes import STANDARD_CODE as PROCESS_CODE
from sales.application.processes import STANDARD_NAME as PROCESS_NAME
from sales.application.processes import seed_defaults
from sales.application.read_models import ReadModels
from sales.domain.activities import (
    ActivityStatus,
    check_in,
    check_plan,
    complete,
    last_activity_after,
    normalize_participants,
)
from sales.domain.expenses import (
    CATEGORY_LABELS,
    DEFAULT_CATEGORIES,
    DEFAULT_SECOND_LEVEL_AMOUNT,
    ApprovalStep,
    Decision,
    ExpenseStatus,
    apply_decision,
    approval_chain,
    check_payment,
    check_spent_on,
    format_expense_code,
)
from sales.domain.expenses import CODE_PREFIX as EXPENSE_PREFIX
from sales.domain.money import DEFAULT_CURRENCY, Money, quantize_fen
from sales.domain.opportunities import CODE_PREFIX as OPPORTUNITY_PREFIX
from sales.domain.opportunities import (
    CompetitorEntry,
    ContactRole,
    DealContact,
    Line,
    StageChange,
    Status,
    ThreatLevel,
    change_stage,
    check_contacts_belong,
    check_probability_override,
    close,
    effective_probability,
    format_opportunity_code,
    lines_total,
    normalize_tags,
    parse_competitor_entries,
    parse_contacts,
    parse_lines,
)
from sales.domain.processes import (
    DECISION_MAKER,
    STANDARD_STAGES,
    Process,
    define_process,
    stage_as_json,
)
from sales.domain.targets import SubjectType, month
from sales.models import (
    CodeCounter,
    Competitor,
    ExpenseCategory,
    LossReason,
    Opportunity,
    SalesProcess,
    SalesStage,
)

SEED = 20260110
DEMO_NOW = datetime(2026, 11, 30, 1, 30, tzinfo=UTC)
"""The moment the data set describes: Monday 30 November 2026, 09:30 in China."""
HISTORY_DAYS = 365
OPPORTUNITY_COUNT = 400
TARGET_YEAR = 2026
IDS = uuid.UUID("6f1c2a1e-5b0d-4c1e-9a57-2f4d8e0b6a10")
"""The namespace of the master records' ids (the same ids every time)."""

# name, strengths, weaknesses, main products, price level
COMPETITORS = (
    (
        "苏州恒钧轴承销售有限公司",
        "国产轴承品牌华东一级代理，现货多，交期三天内",
        "高端进口替代型号少，技术支持人手紧",
        "深沟球轴承、圆锥滚子轴承、带座轴承",
        "low",
    ),
    (
        "上海申阀流体设备有限公司",
        "阀门成套能力强，设计院关系深",
        "价格偏高，售后响应慢",
        "气动球阀、电动蝶阀、截止阀",
        "high",
    ),
    (
        "宁波甬鑫液压气动有限公司",
        "液压系统集成经验丰富，可做非标油缸",
        "账期要求严，华北覆盖弱",
        "液压泵站、油缸、电磁换向阀、气缸",
        "medium",
    ),
    (
        "广州粤控电气设备有限公司",
        "国产变频器、低压电器品牌华南总代，价格有优势",
        "自动化项目实施能力一般",
        "变频器、接触器、断路器、开关柜",
        "low",
    ),
    (
        "天津津诚五金机电有限公司",
        "华北网点多，五金工具品类全",
        "大项目经验少，技术方案能力弱",
        "电动工具、手动工具、紧固件",
        "low",
    ),
    (
        "杭州汇工自动化工程有限公司",
        "产线改造交钥匙工程，国产机器人品牌授权集成商",
        "单价高，交付周期长",
        "PLC、工业机器人、视觉检测系统",
        "high",
    ),
    (
        "成都蜀联工业品供应链有限公司",
        "MRO 线上平台，比价透明，西南仓配快",
        "非标件和技术选型支持弱",
        "五金工具、轴承、劳保用品、紧固件",
        "medium",
    ),
)

LOSS_WEIGHTS = {"price": 34, "relationship": 20, "product_fit": 14, "budget": 10, "timing": 8}
"""How often each loss reason is given (others: ``OTHER_LOSS_WEIGHT``)."""
OTHER_LOSS_WEIGHT = 5
LOST_TO_COMPETITOR = ("price", "relationship", "product_fit")
"""Loss reasons that name the competitor who won, when the deal had one."""
COMPETITOR_NOTES = ("报价低于我司", "与采购经理关系好", "交期承诺更短", "")

# -- the product lines customers of each industry ask for ---------------------------------------
# item, spec, lowest and highest unit price (CNY)
PRODUCTS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "bearings": (
        ("深沟球轴承", "6205-2RS", "12", "30"),
        ("圆锥滚子轴承", "30208", "45", "90"),
        ("调心滚子轴承", "22220 CA/W33", "380", "720"),
        ("圆柱滚子轴承", "NU2212 ECP", "260", "480"),
        ("带座轴承", "UCP208", "60", "120"),
    ),
    "valves": (
        ("气动球阀", "Q641F-16P DN50", "900", "1800"),
        ("电动蝶阀", "D941X-16 DN150", "2600", "5200"),
        ("法兰截止阀", "J41H-25 DN80", "1100", "2100"),
        ("止回阀", "H44H-16C DN100", "800", "1500"),
        ("不锈钢法兰", "PN16 DN100 304", "120", "260"),
    ),
    "hydraulics": (
        ("变量柱塞泵", "45ml/r 恒压变量", "8500", "15000"),
        ("电磁换向阀", "通径6 24VDC", "650", "1300"),
        ("标准气缸", "SC63×200", "320", "680"),
        ("液压油缸", "HSG80/45-300", "2400", "4800"),
        ("气源处理三联件", "AC4000-04", "260", "520"),
    ),
    "electrical": (
        ("变频器", "22kW 380V", "4800", "8600"),
        ("交流接触器", "65A 线圈220V", "160", "320"),
        ("塑壳断路器", "250A 3P", "680", "1300"),
        ("低压开关柜", "GCK 抽出式", "38000", "76000"),
        ("伺服电机", "1.5kW 2000rpm", "2600", "5200"),
    ),
    "automation": (
        ("PLC 控制器", "CPU 32点 I/O", "3200", "6800"),
        ("触摸屏", "10.1寸 工业级", "1600", "3200"),
        ("光电传感器", "对射型 10m", "180", "420"),
        ("六轴工业机器人", "负载20kg 臂展1.7m", "168000", "268000"),
        ("视觉检测系统", "500万像素 含光源", "26000", "52000"),
    ),
    "tools": (
        ("锂电冲击扳手", "18V 无刷", "680", "1400"),
        ("扭力扳手", "20-100N·m", "420", "880"),
        ("工具车套装", "7层 238件", "3800", "7600"),
        ("钴钢钻头套装", "HSS-Co 25件", "160", "380"),
        ("角磨机", "125mm 1200W", "320", "680"),
    ),
    "fasteners": (
        ("高强度螺栓", "M20×80 10.9级", "3.20", "6.80"),
        ("不锈钢六角螺母", "M16 A2-70", "0.80", "1.60"),
        ("化学锚栓", "M16×190", "12", "26"),
        ("膨胀螺栓", "M12×100", "1.50", "3.20"),
    ),
    "instruments": (
        ("电磁流量计", "DN80 一体式", "4200", "8400"),
        ("压力变送器", "0-1.6MPa 4-20mA", "680", "1500"),
        ("一体化温度变送器", "PT100 0-200℃", "380", "820"),
        ("超声波液位计", "量程0-10m", "2600", "5200"),
    ),
    "transmission": (
        ("齿轮减速机", "K系列 7.5kW", "5200", "9800"),
        ("同步带", "HTD 8M-1200", "120", "280"),
        ("梅花弹性联轴器", "LM8", "260", "520"),
        ("链轮链条", "16A-1 配套", "380", "820"),
    ),
    "welding": (
        ("气保焊机", "NBC-350 逆变", "3600", "6800"),
        ("实心焊丝", "ER50-6 1.2mm 15kg", "95", "160"),
        ("等离子切割机", "LGK-100", "6800", "12800"),
    ),
    "machinery": (
        ("卧式离心泵", "ISW80-160 7.5kW", "3200", "6200"),
        ("螺杆空压机", "37kW 变频", "52000", "98000"),
        ("横流冷却塔", "100T", "36000", "68000"),
    ),
}
INDUSTRY_PRODUCTS = {
    "机电设备": ("electrical", "transmission", "machinery"),
    "五金工具": ("tools", "fasteners"),
    "轴承": ("bearings", "transmission"),
    "阀门管件": ("valves", "instruments"),
    "液压气动": ("hydraulics",),
    "电气设备": ("electrical", "automation"),
    "工业自动化": ("automation", "electrical"),
    "通用机械": ("machinery", "transmission", "bearings"),
    "紧固件": ("fasteners", "tools"),
    "仪器仪表": ("instruments", "automation"),
    "流体控制": ("valves", "machinery"),
    "机械传动": ("transmission", "bearings"),
    "工业品综合": ("tools", "bearings", "electrical", "fasteners"),
    "焊接切割": ("welding", "tools"),
    "设备维修": ("bearings", "tools", "hydraulics"),
}
PROJECTS = (
    "{year}年度{product}框架采购",
    "{product}备品备件采购",
    "产线改造{product}项目",
    "新厂房{product}配套",
    "{product}国产化替代",
    "{product}批量补货",
)
TAGS = ("年度框架", "设备改造", "招投标", "进口替代", "新项目", "复购", "设计院推荐")
DESCRIPTIONS = (
    "客户计划{year}年内完成采购，由设备部牵头选型，采购部比价。",
    "原供应商交期不稳定，客户希望引入第二供应商。",
    "产线扩建配套，需提供技术方案和三家比价。",
    "老客户复购，关注价格与账期。",
    "设计院推荐我司方案，需配合出具技术参数表。",
)
DEAL_ROLE = {
    "decision_maker": ContactRole.DECISION_MAKER,
    "buyer": ContactRole.PURCHASER,
    "influencer": ContactRole.INFLUENCER,
    "user": ContactRole.USER,
    "gatekeeper": ContactRole.INFLUENCER,
}
ABANDON_REASONS = (
    "客户项目延期至明年，暂不跟进",
    "客户转为集团统一采购，本地不再立项",
    "需求变更为维修服务，转客服中心跟进",
)
BACK_REASONS = (
    "客户技术部门更换负责人，需求需重新确认",
    "客户要求调整配置，方案重新评估",
    "预算未获批，退回需求确认",
)

# -- activities --------------------------------------------------------------------------------
# (type, subject, result, next step) per open stage position (0 = the first open stage)
STAGE_ACTIVITIES: tuple[tuple[tuple[str, str, str, str], ...], ...] = (
    (
        ("call", "电话介绍公司产品线", "客户有采购计划，同意安排拜访", "预约现场拜访"),
        (
            "visit",
            "初次拜访，了解设备与采购情况",
            "见到设备部主管，了解现用品牌与用量",
            "整理需求清单",
        ),
        ("email", "发送公司介绍与产品目录", "客户已收到资料", "电话跟进反馈"),
    ),
    (
        ("visit", "现场勘查，确认工况与需求", "确认型号与年用量，客户关注交期", "准备选型方案"),
        ("meeting", "技术交流：选型参数确认", "技术部认可参数，需补充认证资料", "提供检测报告"),
        ("call", "电话确认需求清单", "需求清单确认完毕", "准备报价"),
    ),
    (
        ("demo", "产品演示及样品测试", "样品测试通过，客户满意", "提交正式报价"),
        ("email", "提交技术方案与报价", "客户已收到报价，正在内部比价", "约采购部面谈"),
        ("visit", "拜访采购部，讲解报价方案", "采购部要求再优化价格", "申请特价"),
    ),
    (
        ("meeting", "商务谈判：价格与账期", "价格基本达成一致，账期待定", "请示账期政策"),
        ("visit", "拜访总经理，推进合同签订", "总经理同意合作，等待走合同流程", "准备合同文本"),
        ("call", "电话沟通合同条款", "合同条款确认，走用印流程", "跟进合同回传"),
    ),
)
CARE_ACTIVITIES = (
    ("call", "电话回访产品使用情况", "客户反馈使用正常", "下季度再回访"),
    ("visit", "例行拜访，维护客户关系", "了解到明年有设备改造计划", "跟踪改造项目立项"),
    ("visit", "陪同工程师现场解决问题", "问题已解决，客户认可服务", "整理服务报告"),
)
DURATIONS = {"call": (15, 20, 30), "email": (10, 15), "visit": (60, 90, 120), "meeting": (60, 90)}
DEMO_DURATIONS = (90, 120, 180)
ENGINEER = "u-engineer-01"
CHECKIN_JITTER = 0.04
"""How far (in degrees) a check-in lies from the centre of the customer's city at most."""
CITY_POSITIONS = {
    "上海": ("31.2304", "121.4737"),
    "南京": ("32.0603", "118.7969"),
    "苏州": ("31.2989", "120.5853"),
    "无锡": ("31.4912", "120.3119"),
    "常州": ("31.8107", "119.9741"),
    "杭州": ("30.2741", "120.1551"),
    "宁波": ("29.8683", "121.5440"),
    "温州": ("27.9943", "120.6994"),
    "济南": ("36.6512", "117.1201"),
    "青岛": ("36.0671", "120.3826"),
    "合肥": ("31.8206", "117.2272"),
    "厦门": ("24.4798", "118.0894"),
    "北京": ("39.9042", "116.4074"),
    "天津": ("39.3434", "117.3616"),
    "石家庄": ("38.0428", "114.5149"),
    "唐山": ("39.6305", "118.1802"),
    "太原": ("37.8706", "112.5489"),
    "广州": ("23.1291", "113.2644"),
    "深圳": ("22.5431", "114.0579"),
    "佛山": ("23.0215", "113.1214"),
    "东莞": ("23.0207", "113.7518"),
    "南宁": ("22.8170", "108.3665"),
    "武汉": ("30.5928", "114.3055"),
    "长沙": ("28.2282", "112.9388"),
    "郑州": ("34.7466", "113.6254"),
    "南昌": ("28.6820", "115.8579"),
    "成都": ("30.5728", "104.0668"),
    "重庆": ("29.5630", "106.5516"),
    "昆明": ("24.8801", "102.8329"),
    "贵阳": ("26.6470", "106.6302"),
}

# -- expenses ----------------------------------------------------------------------------------
# lowest and highest amount per category (CNY)
EXPENSE_AMOUNTS = {
    "travel": ("180", "3200"),
    "entertainment": ("300", "4800"),
    "gift": ("200", "2800"),
    "sample": ("300", "9000"),
    "other": ("50", "1500"),
}
EXPENSE_OF_ACTIVITY = {
    "visit": (("travel", 7), ("entertainment", 3)),
    "meeting": (("entertainment", 6), ("travel", 4)),
    "demo": (("sample", 6), ("travel", 4)),
}
EXPENSE_REMARKS = {
    "travel": ("往返高铁票及市内交通", "出差住宿两晚", "自驾油费及过路费"),
    "entertainment": ("商务午餐", "客户来访接待晚餐", "技术交流会茶歇"),
    "gift": ("节日礼盒", "定制工具套装"),
    "sample": ("测试样品", "样品及快递费"),
    "other": ("资料打印装订", "展会资料费"),
}
FESTIVAL_GIFT_DAYS = ((date(2026, 2, 4), date(2026, 2, 12)), (date(2026, 9, 16), date(2026, 9, 23)))
REJECTIONS = ("发票抬头有误，请重新开具后提交", "超出招待标准，请说明原因", "未关联客户拜访记录")
PAID_AFTER_DAYS = (3, 15)
EXPENSE_OUTCOMES = (
    (14, (("submitted", 70), ("approved", 20), ("rejected", 10))),
    (45, (("approved", 45), ("paid", 45), ("rejected", 10))),
    (HISTORY_DAYS * 2, (("paid", 85), ("rejected", 10), ("approved", 5))),
)
"""What became of an expense, by the days since it was submitted (fewer than the number)."""
SEASONALITY = {
    1: "0.9",
    2: "0.6",
    3: "1.0",
    4: "1.0",
    5: "1.0",
    6: "1.1",
    7: "0.9",
    8: "0.9",
    9: "1.1",
    10: "0.9",
    11: "1.1",
    12: "1.3",
}
"""Each month's share of a salesperson's average monthly target (Spring Festival in February,
year-end push in December)."""
TARGET_STEP = Decimal(10_000)
MIN_TARGET = Decimal(50_000)

# -- the org chart as ids ----------------------------------------------------------------------
PERSON_OF_USER = {user.id: user.person_id for user in org_demo.DEMO_USERS}
USER_OF_PERSON = {person: user for user, person in PERSON_OF_USER.items()}
DEPARTMENT_OF_PERSON = {row[0]: row[3] for row in org_demo.PEOPLE}
PARENT_OF_DEPARTMENT = {row[0]: row[4] for row in org_demo.DEPARTMENTS}
MANAGER_OF_DEPARTMENT = {row[0]: row[6] for row in org_demo.DEPARTMENTS}


def department_chain(department_id: str) -> list[tuple[str, str | None]]:
    """The department and each one above it, with its manager (person id), as the approval
    chain reads them."""
    chain: list[tuple[str, str | None]] = []
    current: str | None = department_id
    while current:
        chain.append((current, MANAGER_OF_DEPARTMENT[current]))
        current = PARENT_OF_DEPARTMENT[current]
    return chain


def manager_of(user_id: str) -> str | None:
    """The user id of the nearest manager above the user who has a user account."""
    person = PERSON_OF_USER[user_id]
    for _, manager in department_chain(DEPARTMENT_OF_PERSON[person]):
        if manager and manager != person and manager in USER_OF_PERSON:
            return USER_OF_PERSON[manager]
    return None


def master_id(kind: str, key: str) -> uuid.UUID:
    return uuid.uuid5(IDS, f"{kind}:{key}")


@dataclass(frozen=True)
class Masters:
    """The master records the pipeline refers to, as the database holds them."""

    process: Process
    competitor_ids: dict[str, uuid.UUID]
    """Competitor name → id."""
    loss_reasons: tuple[str, ...]
    expense_categories: tuple[str, ...]


def standard_process() -> Process:
    return define_process(
        str(master_id("process", PROCESS_CODE)),
        PROCESS_CODE,
        PROCESS_NAME,
        [stage_as_json(stage) for stage in STANDARD_STAGES],
    )


def standard_masters() -> Masters:
    return Masters(
        process=standard_process(),
        competitor_ids={row[0]: master_id("competitor", row[0]) for row in COMPETITORS},
        loss_reasons=tuple(sorted(code for code, _ in DEFAULT_LOSS_REASONS)),
        expense_categories=DEFAULT_CATEGORIES,
    )


# -- time --------------------------------------------------------------------------------------
def business_day(moment: datetime) -> date:
    return moment.astimezone(BUSINESS_TZ).date()


def working_days(first: date, last: date) -> list[date]:
    """Monday to Friday from ``first`` to ``last``, both included."""
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [day for day in days if day.weekday() < 5]


def _business_year(moment: datetime) -> int:
    return business_day(moment).year


@dataclass(frozen=True)
class _Terms:
    """What an opportunity is about, as the domain parsed it."""

    contacts: tuple[DealContact, ...]
    lines: tuple[Line, ...]
    amount: Decimal | None
    close_date: date | None
    competitors: tuple[CompetitorEntry, ...]

    def values(self) -> dict[str, Any]:
        """The values stage moves check required fields against."""
        return {
            "contacts": self.contacts,
            "expected_amount": self.amount,
            "expected_close_date": self.close_date,
        }


@dataclass
class _Walk:
    """Where an opportunity stands after each move, and the stays it made."""

    stage_code: str
    status: str
    probability: int
    override: int | None = None
    loss_reason: str | None = None
    won_by: str | None = None
    closed_at: datetime | None = None
    visits: list[tuple[str, datetime, str | None]] = field(default_factory=list)
    """(stage code, entered at, reason) of every stay, in order."""

    def apply(self, change: StageChange, at: datetime) -> None:
        if change.stage_code != self.stage_code:
            self.visits.append((change.stage_code, at, change.reason))
        self.stage_code, self.status = change.stage_code, change.status
        self.probability, self.override = change.probability, change.probability_override
        self.loss_reason, self.won_by = change.loss_reason, change.won_competitor_id


class _Generator:
    """Draws the pipeline from one seeded random generator, in one order: the same rows every
    time for the same masters."""

    def __init__(self, masters: Masters) -> None:
        self.rng = random.Random(SEED)
        self.masters = masters
        self.process = masters.process
        self.open_stages = self.process.open_stages
        self.competitor_ids = [str(masters.competitor_ids[name]) for name in masters.competitor_ids]
        book = customer_demo.build()
        self.customers = [c for c in book["customers"] if c["status"] != "disabled"]
        self.contacts: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
        for contact in book["contacts"]:
            self.contacts[contact["customer_id"]].append(contact)
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.first_day = business_day(DEMO_NOW - timedelta(days=HISTORY_DAYS))
        self.yesterday = business_day(DEMO_NOW) - timedelta(days=1)

    # -- small helpers ---------------------------------------------------------------------
    def new_id(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def at(self, day: date, first_hour: int = 9, last_hour: int = 17) -> datetime:
        """A moment of office hours on ``day`` in China, in UTC."""
        moment = time(self.rng.randint(first_hour, last_hour), self.rng.choice((0, 15, 30, 45)))
        return datetime.combine(day, moment, BUSINESS_TZ).astimezone(UTC)

    def weighted(self, options: Sequence[tuple[Any, int]]) -> Any:
        return self.rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]

    def amount_between(self, low: str, high: str) -> Decimal:
        """A price or amount from ``low`` to ``high``: to the fen under 10, whole yuan under
        1000, tens of yuan above."""
        value = Decimal(str(self.rng.uniform(float(low), float(high))))
        step = Decimal("0.01") if value < 10 else Decimal(1) if value < 1000 else Decimal(10)
        return quantize_fen((value / step).to_integral_value() * step)

    # -- opportunities ---------------------------------------------------------------------
    def pick_customer(self) -> tuple[dict[str, Any], list[date]]:
        """A customer (formal and key ones more often) and the working days an opportunity
        of theirs may have started on."""
        weights = [
            {"formal": 3, "potential": 2, "dormant": 1}[c["status"]]
            * {"VIP": 3, "A": 2}.get(c["category"], 1)
            for c in self.customers
        ]
        while True:
            customer = self.rng.choices(self.customers, weights=weights)[0]
            first = max(self.first_day, business_day(customer["created_at"]) + timedelta(days=1))
            days = working_days(first, self.yesterday - timedelta(days=1))
            if days:
                return customer, days

    def outcome(self, age_days: int) -> str:
        if age_days > 240:
            weights = (12, 38, 35, 15)
        elif age_days > 120:
            weights = (35, 28, 27, 10)
        elif age_days > 45:
            weights = (65, 15, 15, 5)
        else:
            weights = (90, 3, 5, 2)
        statuses = (Status.OPEN, Status.WON, Status.LOST, Status.ABANDONED)
        return str(self.rng.choices(statuses, weights=weights)[0])

    def furthest_open(self, status: str, age_days: int) -> int:
        """The index of the furthest open stage reached (the last open stage for a win)."""
        last = len(self.open_stages) - 1
        if status == Status.WON:
            return last
        if status == Status.OPEN:
            weights = (60, 30, 10, 0) if age_days < 20 else (15, 25, 33, 27)
        elif status == Status.LOST:
            weights = (20, 30, 35, 15)
        else:
            weights = (35, 35, 20, 10)
        padded = (list(weights) + [weights[-1]] * last)[: last + 1]
        return self.rng.choices(range(last + 1), weights=padded)[0]

    def path(self, furthest: int) -> list[tuple[str, str | None]]:
        """The open stages entered in order, with a move back (and its reason) now and then."""
        codes = [stage.code for stage in self.open_stages[: furthest + 1]]
        steps: list[tuple[str, str | None]] = [(codes[0], None)]
        for index, code in enumerate(codes[1:], start=1):
            steps.append((code, None))
            if index >= 2 and self.rng.random() < 0.06:
                steps.append((codes[index - 1], self.rng.choice(BACK_REASONS)))
                steps.append((code, None))
        return steps

    def schedule(self, days: list[date], moves: int, stays: list[int]) -> list[int]:
        """Indexes into ``days`` of the start and of each move: increasing, within ``days``,
        the stays shrunk alike when they do not fit."""
        room = len(days) - 1
        total = sum(stays)
        if total > room:
            stays = [max(1, stay * room // total) for stay in stays]
            while sum(stays) > room:
                stays[stays.index(max(stays))] -= 1
        positions = [0]
        for stay in stays[:moves]:
            positions.append(positions[-1] + stay)
        return positions

    def lines(self, customer: dict[str, Any]) -> list[dict[str, str]]:
        groups = INDUSTRY_PRODUCTS.get(customer.get("industry") or "", ("tools", "bearings"))
        products = [p for group in groups for p in PRODUCTS[group]]
        chosen = self.rng.sample(
            products, k=min(len(products), self.rng.choice((1, 1, 2, 2, 3, 4)))
        )
        raw = []
        for item, spec, low, high in chosen:
            price = self.amount_between(low, high)
            wanted = Decimal(str(self.rng.lognormvariate(10.3, 0.9)))
            quantity = max(Decimal(1), (wanted / price).to_integral_value())
            step = (
                100 if quantity >= 1000 else 10 if quantity >= 100 else 5 if quantity >= 20 else 1
            )
            quantity = max(Decimal(1), (quantity / step).to_integral_value() * step)
            raw.append(
                {
                    "item_name": item,
                    "spec": spec,
                    "quantity": str(quantity),
                    "expected_price": str(price),
                }
            )
        return raw

    def course(self) -> tuple[dict[str, Any], str, list[tuple[str, str | None]], list[datetime]]:
        """A customer, how their opportunity ends (its status), the open stages it enters
        (with the reason of each move back) and the moments of its creation and of each move,
        the close included."""
        customer, days = self.pick_customer()
        start = self.rng.randrange(len(days))
        days = days[start:] + working_days(days[-1] + timedelta(days=1), self.yesterday)
        age = (business_day(DEMO_NOW) - days[0]).days
        while True:
            status = self.outcome(age)
            steps = self.path(self.furthest_open(status, age))
            moves = len(steps) - 1 + (0 if status == Status.OPEN else 1)
            if moves <= len(days) - 1:
                break
        positions = self.schedule(days, moves, [self.rng.randint(2, 18) for _ in range(moves)])
        return customer, status, steps, [self.at(days[p]) for p in positions]

    def needs(self, steps: list[tuple[str, str | None]], status: str) -> set[str]:
        """The fields the stages the opportunity enters require."""
        entered = {code for code, _ in steps}
        if status == Status.WON:
            entered.add(self.process.won_stage.code)
        return {
            field
            for stage in self.process.stages
            if stage.code in entered
            for field in stage.required_fields
        }

    def terms(
        self, customer: dict[str, Any], needs: set[str], status: str, last_move: datetime
    ) -> _Terms:
        """Contacts and their roles, product lines, amount, close date and competitors, with
        what the stages entered require filled in."""
        contacts = self.contacts[customer["id"]]
        chosen = self.rng.sample(contacts, k=min(len(contacts), self.rng.choice((1, 2, 2, 3))))
        raw_contacts = [
            {"contact_id": str(c["id"]), "role": str(DEAL_ROLE[c["purchase_role"]])} for c in chosen
        ]
        if DECISION_MAKER in needs and all(
            c["role"] != ContactRole.DECISION_MAKER for c in raw_contacts
        ):
            raw_contacts[0]["role"] = str(ContactRole.DECISION_MAKER)
        deal_contacts = parse_contacts(raw_contacts)
        check_contacts_belong(deal_contacts, {str(c["id"]) for c in contacts})
        lines: tuple[Line, ...] = ()
        amount: Decimal | None = None
        if "expected_amount" in needs or self.rng.random() < 0.5:
            if self.rng.random() < 0.8:
                lines = parse_lines(self.lines(customer), DEFAULT_CURRENCY)
                amount = lines_total(lines, DEFAULT_CURRENCY).amount
            else:
                amount = Decimal(self.rng.randrange(2, 60) * 10_000)
        close_date: date | None = None
        today = business_day(DEMO_NOW)
        if "expected_close_date" in needs or (amount is not None and self.rng.random() < 0.7):
            if status != Status.OPEN:
                close_date = business_day(last_move) + timedelta(days=self.rng.randint(-20, 30))
            elif self.rng.random() < 0.1:
                close_date = today - timedelta(days=self.rng.randint(1, 30))
            else:
                close_date = today + timedelta(days=self.rng.randint(7, 150))
        return _Terms(deal_contacts, lines, amount, close_date, self.competition(amount, status))

    def competition(self, amount: Decimal | None, status: str) -> tuple[CompetitorEntry, ...]:
        entries = []
        if self.rng.random() < 0.45 or (status == Status.LOST and self.rng.random() < 0.8):
            for competitor_id in self.rng.sample(self.competitor_ids, k=self.rng.choice((1, 1, 2))):
                share = Decimal(str(round(self.rng.uniform(0.85, 1.05), 3)))
                entries.append(
                    {
                        "competitor_id": competitor_id,
                        "offer": str(quantize_fen(amount * share)) if amount else None,
                        "threat_level": str(self.rng.choice(tuple(ThreatLevel))),
                        "notes": self.rng.choice(COMPETITOR_NOTES),
                    }
                )
        return parse_competitor_entries(entries, set(self.competitor_ids))

    def walk(
        self,
        steps: list[tuple[str, str | None]],
        moments: list[datetime],
        status: str,
        terms: _Terms,
    ) -> _Walk:
        """Move the opportunity through ``steps`` and close it as ``status`` says, each move
        checked by the domain as the application checks it."""
        values = terms.values()
        stage_code = steps[0][0]
        walked = _Walk(stage_code, Status.OPEN.value, self.process.stage(stage_code).probability)
        walked.visits.append((stage_code, moments[0], None))
        for (code, reason), moment in zip(steps[1:], moments[1:], strict=False):
            walked.apply(
                change_stage(
                    self.process,
                    status=walked.status,
                    stage_code=walked.stage_code,
                    to_code=code,
                    values=values,
                    reason=reason,
                ),
                moment,
            )
        if status == Status.OPEN:
            if self.rng.random() < 0.07:
                walked.override = check_probability_override(
                    min(95, max(5, walked.probability + self.rng.choice((-20, -10, 10, 15))))
                )
                walked.probability = effective_probability(
                    self.process.stage(walked.stage_code), walked.override, walked.status
                )
            return walked
        loss_reason = won_by = None
        if status == Status.LOST:
            reasons = self.masters.loss_reasons
            weights = [LOSS_WEIGHTS.get(code, OTHER_LOSS_WEIGHT) for code in reasons]
            loss_reason = self.rng.choices(reasons, weights)[0]
            if loss_reason in LOST_TO_COMPETITOR and terms.competitors:
                won_by = self.rng.choice(terms.competitors).competitor_id
        change = close(
            self.process,
            status=walked.status,
            stage_code=walked.stage_code,
            outcome=status,
            values=values,
            reason=self.rng.choice(ABANDON_REASONS) if status == Status.ABANDONED else None,
            loss_reason=loss_reason,
            loss_reasons=self.masters.loss_reasons,
            won_competitor_id=won_by,
            competitors=set(self.competitor_ids),
        )
        walked.apply(change, moments[-1])
        walked.closed_at = moments[-1]
        return walked

    def opportunity(self) -> None:
        customer, status, steps, moments = self.course()
        terms = self.terms(customer, self.needs(steps, status), status, moments[-1])
        walked = self.walk(steps, moments, status, terms)
        assert walked.status == status
        opportunity_id = self.new_id()
        owner, created_at = customer["owner_id"], moments[0]
        year = business_day(created_at).year
        product = terms.lines[0].item_name if terms.lines else "工业品"
        project = self.rng.choice(PROJECTS).format(year=year, product=product)
        opportunity = {
            "id": opportunity_id,
            "name": f"{customer['short_name'] or customer['name']}{project}",
            "customer_id": customer["id"],
            "owner_id": owner,
            "department_id": customer["department_id"],
            "region": customer["region"],
            "category": customer["category"],
            "process_id": uuid.UUID(self.process.id),
            "stage_code": walked.stage_code,
            "probability": walked.probability,
            "probability_override": walked.override,
            "status": walked.status,
            "expected_amount": terms.amount,
            "currency": DEFAULT_CURRENCY,
            "expected_close_date": terms.close_date,
            "source_campaign_id": None,
            "source_lead_id": None,
            "description": self.rng.choice(DESCRIPTIONS).format(year=year),
            "tags": normalize_tags(self.rng.sample(TAGS, k=self.rng.choice((0, 1, 1, 2)))),
            "loss_reason": walked.loss_reason,
            "won_competitor_id": uuid.UUID(walked.won_by) if walked.won_by else None,
            "closed_at": walked.closed_at,
            "last_activity_at": None,
            "created_by": owner,
            "created_at": created_at,
            "updated_at": moments[-1],
            "version": len(moments),
        }
        self.rows["opportunities"].append(opportunity)
        self.rows["opportunity_contacts"] += [
            {
                "opportunity_id": opportunity_id,
                "contact_id": uuid.UUID(c.contact_id),
                "role": c.role,
            }
            for c in terms.contacts
        ]
        self.rows["opportunity_lines"] += [
            {
                "opportunity_id": opportunity_id,
                "line_no": line.line_no,
                "item_name": line.item_name,
                "spec": line.spec or None,
                "quantity": line.quantity,
                "expected_price": line.expected_price.amount,
            }
            for line in terms.lines
        ]
        self.rows["opportunity_competitors"] += [
            {
                "opportunity_id": opportunity_id,
                "competitor_id": uuid.UUID(entry.competitor_id),
                "offer": entry.offer.amount if entry.offer else None,
                "threat_level": entry.threat_level,
                "notes": entry.notes or None,
            }
            for entry in terms.competitors
        ]
        visits = walked.visits
        for index, (code, entered_at, reason) in enumerate(visits):
            self.rows["stage_history"].append(
                {
                    "id": self.new_id(),
                    "opportunity_id": opportunity_id,
                    "process_id": uuid.UUID(self.process.id),
                    "stage_code": code,
                    "entered_at": entered_at,
                    "left_at": visits[index + 1][1] if index + 1 < len(visits) else None,
                    "moved_by": owner,
                    "reason": reason,
                }
            )
        self.activities_of_opportunity(opportunity, customer, visits)

    # -- activities ------------------------------------------------------------------------
    def activity(
        self,
        customer: dict[str, Any],
        owner: str,
        department: str | None,
        kind: tuple[str, str, str, str],
        start_at: datetime,
        status: str,
        opportunity_id: uuid.UUID | None = None,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        activity_type, subject, result, next_step = kind
        durations = DEMO_DURATIONS if activity_type == "demo" else DURATIONS[activity_type]
        duration = check_plan(start_at, self.rng.choice(durations))
        contacts = self.contacts[customer["id"]]
        participants: list[str] = []
        if activity_type in ("demo", "meeting") and self.rng.random() < 0.3:
            joining = ENGINEER if activity_type == "demo" else manager_of(owner)
            participants = normalize_participants([joining] if joining else [], owner)
        row: dict[str, Any] = {
            "id": self.new_id(),
            "type": activity_type,
            "subject": subject,
            "status": str(status),
            "customer_id": customer["id"],
            "contact_id": self.rng.choice(contacts)["id"] if self.rng.random() < 0.8 else None,
            "opportunity_id": opportunity_id,
            "owner_id": owner,
            "department_id": department,
            "region": customer["region"],
            "category": customer["category"],
            "start_at": start_at,
            "duration_minutes": duration,
            "done_at": None,
            "result": None,
            "next_step": None,
            "checkin_lat": None,
            "checkin_lng": None,
            "checkin_at": None,
            "participants": participants,
            "created_at": created_at or start_at - timedelta(hours=self.rng.randint(2, 72)),
            "version": 1,
        }
        if status == ActivityStatus.DONE:
            done = complete(
                ActivityStatus.PLANNED,
                result,
                next_step,
                start_at + timedelta(minutes=duration),
                DEMO_NOW,
            )
            row.update(
                done_at=done.done_at, result=done.result, next_step=done.next_step, version=2
            )
            if activity_type == "visit":
                city = customer["region"].rsplit("/", 1)[-1]
                lat, lng = CITY_POSITIONS[city]
                position = check_in(
                    activity_type,
                    str(Decimal(lat) + self.jitter()),
                    str(Decimal(lng) + self.jitter()),
                    start_at + timedelta(minutes=self.rng.randint(-10, 5)),
                    DEMO_NOW,
                )
                if position is not None:
                    row.update(
                        checkin_lat=position.lat, checkin_lng=position.lng, checkin_at=position.at
                    )
        elif status == ActivityStatus.CANCELLED:
            row["version"] = 2
        row["created_at"] = min(row["created_at"], start_at)
        row["updated_at"] = row["done_at"] or row["created_at"]
        self.rows["activities"].append(row)
        return row

    def jitter(self) -> Decimal:
        return Decimal(str(round(self.rng.uniform(-CHECKIN_JITTER, CHECKIN_JITTER), 6)))

    def activities_of_opportunity(
        self,
        opportunity: dict[str, Any],
        customer: dict[str, Any],
        visits: list[tuple[str, datetime, str | None]],
    ) -> None:
        owner, department = opportunity["owner_id"], opportunity["department_id"]
        open_codes = [stage.code for stage in self.open_stages]
        end = opportunity["closed_at"] or DEMO_NOW
        last_done: datetime | None = None
        for index, (code, entered_at, _) in enumerate(visits):
            if code not in open_codes:
                continue
            left_at = visits[index + 1][1] if index + 1 < len(visits) else end
            days = working_days(business_day(entered_at), business_day(left_at))
            count = 1 if index == 0 else self.rng.choice((0, 1, 1, 2))
            for n in range(count):
                day = days[0] if index == 0 and n == 0 else self.rng.choice(days)
                start_at = self.at(day, last_hour=15)
                if index == 0 and n == 0:
                    start_at = max(start_at, entered_at + timedelta(minutes=30))
                if start_at + timedelta(hours=3) >= min(left_at, DEMO_NOW):
                    continue
                kinds = STAGE_ACTIVITIES[min(open_codes.index(code), len(STAGE_ACTIVITIES) - 1)]
                row = self.activity(
                    customer,
                    owner,
                    department,
                    self.rng.choice(kinds),
                    start_at,
                    ActivityStatus.DONE,
                    opportunity["id"],
                    created_at=max(opportunity["created_at"], start_at - timedelta(days=2)),
                )
                last_done = last_activity_after(last_done, row["done_at"])
        opportunity["last_activity_at"] = last_done
        if opportunity["status"] != Status.OPEN:
            return
        stage_index = min(open_codes.index(opportunity["stage_code"]), len(STAGE_ACTIVITIES) - 1)
        today = business_day(DEMO_NOW)
        if self.rng.random() < 0.6:
            day = self.rng.choice(
                working_days(today + timedelta(days=1), today + timedelta(days=20))
            )
            self.activity(
                customer,
                owner,
                department,
                self.rng.choice(STAGE_ACTIVITIES[stage_index]),
                self.at(day),
                ActivityStatus.PLANNED,
                opportunity["id"],
                created_at=max(
                    opportunity["created_at"], DEMO_NOW - timedelta(days=self.rng.randint(1, 6))
                ),
            )
        if self.rng.random() < 0.14:
            first = max(business_day(opportunity["created_at"]), today - timedelta(days=12))
            days = working_days(first, today - timedelta(days=1))
            if days:
                self.activity(
                    customer,
                    owner,
                    department,
                    self.rng.choice(STAGE_ACTIVITIES[stage_index]),
                    self.at(self.rng.choice(days), last_hour=15),
                    ActivityStatus.PLANNED,
                    opportunity["id"],
                    created_at=max(opportunity["created_at"], DEMO_NOW - timedelta(days=20)),
                )
        if self.rng.random() < 0.05:
            days = working_days(business_day(opportunity["created_at"]), today - timedelta(days=1))
            self.activity(
                customer,
                owner,
                department,
                self.rng.choice(STAGE_ACTIVITIES[stage_index]),
                self.at(self.rng.choice(days), last_hour=15),
                ActivityStatus.CANCELLED,
                opportunity["id"],
                created_at=opportunity["created_at"],
            )

    def care_activities(self) -> None:
        """Calls and visits to keep customers, outside any deal."""
        today = business_day(DEMO_NOW)
        for customer in self.customers:
            if customer["status"] not in ("formal", "dormant") or self.rng.random() > 0.35:
                continue
            first = max(self.first_day, business_day(customer["created_at"]) + timedelta(days=1))
            days = working_days(first, today - timedelta(days=1))
            if not days:
                continue
            for _ in range(self.rng.choice((1, 1, 2))):
                self.activity(
                    customer,
                    customer["owner_id"],
                    customer["department_id"],
                    self.rng.choice(CARE_ACTIVITIES),
                    self.at(self.rng.choice(days), last_hour=15),
                    ActivityStatus.DONE,
                )
            if self.rng.random() < 0.1:
                day = self.rng.choice(
                    working_days(today + timedelta(days=1), today + timedelta(days=30))
                )
                self.activity(
                    customer,
                    customer["owner_id"],
                    customer["department_id"],
                    self.rng.choice(CARE_ACTIVITIES),
                    self.at(day),
                    ActivityStatus.PLANNED,
                    created_at=DEMO_NOW - timedelta(days=self.rng.randint(1, 10)),
                )

    # -- expenses --------------------------------------------------------------------------
    def expenses(self) -> None:
        customers = {c["id"]: c for c in self.customers}
        for activity in list(self.rows["activities"]):
            options = EXPENSE_OF_ACTIVITY.get(activity["type"])
            if activity["status"] != ActivityStatus.DONE or not options:
                continue
            if self.rng.random() > 0.45:
                continue
            category = self.weighted(options)
            self.expense(
                activity["owner_id"],
                category,
                business_day(activity["done_at"]),
                customers[activity["customer_id"]],
                activity["opportunity_id"],
                activity["id"],
                earliest=activity["done_at"],
            )
        keys = [
            c for c in self.customers if c["category"] in ("VIP", "A") and c["status"] == "formal"
        ]
        for first, last in FESTIVAL_GIFT_DAYS:
            for customer in self.rng.sample(keys, k=min(len(keys), 15)):
                if business_day(customer["created_at"]) < first:
                    day = first + timedelta(days=self.rng.randint(0, (last - first).days))
                    self.expense(customer["owner_id"], "gift", day, customer)
        owners = sorted({c["owner_id"] for c in self.customers})
        for _ in range(16):
            day = self.first_day + timedelta(days=self.rng.randint(0, HISTORY_DAYS - 2))
            self.expense(self.rng.choice(owners), self.rng.choice(("travel", "other")), day, None)

    def expense(
        self,
        submitter: str,
        category: str,
        spent_on: date,
        customer: dict[str, Any] | None,
        opportunity_id: uuid.UUID | None = None,
        activity_id: uuid.UUID | None = None,
        earliest: datetime | None = None,
    ) -> None:
        check_spent_on(spent_on, business_day(DEMO_NOW))
        if category not in self.masters.expense_categories:
            category = self.masters.expense_categories[-1]
        low, high = EXPENSE_AMOUNTS.get(category, EXPENSE_AMOUNTS["other"])
        amount = self.amount_between(low, high)
        if category == "travel" and amount < 1000:
            amount += Decimal(self.rng.choice(("0.50", "0.00", "0.00")))
        person = PERSON_OF_USER[submitter]
        department = DEPARTMENT_OF_PERSON[person]
        money = Money(amount)
        steps = approval_chain(
            person, department_chain(department), money, DEFAULT_SECOND_LEVEL_AMOUNT
        )
        submitted_at = self.at(spent_on + timedelta(days=self.rng.randint(0, 4)))
        if earliest is not None:
            submitted_at = max(submitted_at, earliest + timedelta(minutes=30))
        submitted_at = min(submitted_at, DEMO_NOW - timedelta(hours=2))
        age = (DEMO_NOW - submitted_at).days
        wanted = self.weighted(next(odds for days, odds in EXPENSE_OUTCOMES if age < days))
        status, steps, decisions = self.decide(steps, wanted, submitted_at)
        decided_at = [at for at, _ in decisions.values()]
        paid_at = None
        if wanted == ExpenseStatus.PAID:
            check_payment(status)
            paid_at = min(
                max(decided_at) + timedelta(days=self.rng.randint(*PAID_AFTER_DAYS)),
                DEMO_NOW - timedelta(hours=1),
            )
            status = ExpenseStatus.PAID.value
        assert status == wanted
        expense_id = self.new_id()
        self.rows["expenses"].append(
            {
                "id": expense_id,
                "submitter_id": submitter,
                "department_id": department,
                "region": customer["region"] if customer else None,
                "category": customer["category"] if customer else None,
                "expense_category": category,
                "amount": money.amount,
                "currency": money.currency,
                "spent_on": spent_on,
                "customer_id": customer["id"] if customer else None,
                "opportunity_id": opportunity_id,
                "activity_id": activity_id,
                "receipt_no": f"{spent_on.year % 100}{self.rng.randrange(10**17):017d}0",
                "remark": self.rng.choice(EXPENSE_REMARKS.get(category, EXPENSE_REMARKS["other"])),
                "status": status,
                "paid_at": paid_at,
                "created_at": submitted_at,
                "updated_at": paid_at or max(decided_at, default=submitted_at),
                "version": 1 + len(decisions) + (1 if paid_at else 0),
            }
        )
        for step in steps:
            at, comment = decisions.get(step.level, (None, None))
            self.rows["expense_approvals"].append(
                {
                    "expense_id": expense_id,
                    "level": step.level,
                    "approver_person_id": step.approver_person_id,
                    "approver_user_id": USER_OF_PERSON.get(step.approver_person_id),
                    "decision": step.decision,
                    "decided_at": at,
                    "comment": comment,
                }
            )

    def decide(
        self, steps: list[ApprovalStep], wanted: str, submitted_at: datetime
    ) -> tuple[str, list[ApprovalStep], dict[int, tuple[datetime, str | None]]]:
        """The approvers decide, level by level through the domain, until the expense is
        ``wanted`` (approved for one that is paid); its status, the steps with their
        decisions, and when each level decided with what comment."""
        status = ExpenseStatus.SUBMITTED.value
        decisions: dict[int, tuple[datetime, str | None]] = {}
        if wanted == ExpenseStatus.SUBMITTED:
            return status, steps, decisions
        rejecting = self.rng.choice(steps).level if wanted == ExpenseStatus.REJECTED else None
        moment = submitted_at
        for step in list(steps):
            decision = Decision.REJECTED if step.level == rejecting else Decision.APPROVED
            comment = self.rng.choice(REJECTIONS) if decision == Decision.REJECTED else None
            outcome = apply_decision(status, steps, step.approver_person_id, decision, comment)
            steps = [outcome.step if s.level == step.level else s for s in steps]
            moment = min(
                moment + timedelta(hours=self.rng.randint(3, 60)), DEMO_NOW - timedelta(hours=1)
            )
            decisions[step.level], status = (moment, comment), outcome.status
            if outcome.next_step is None:
                break
        return status, steps, decisions

    # -- targets ---------------------------------------------------------------------------
    def targets(self) -> None:
        """Each salesperson's monthly target: about what they won per month this year plus
        a tenth, shaped by the season; a department's is the sum of its people's and its
        departments' below."""
        won: dict[str, Decimal] = defaultdict(Decimal)
        for row in self.rows["opportunities"]:
            if row["status"] == Status.WON and _business_year(row["closed_at"]) == TARGET_YEAR:
                won[row["owner_id"]] += row["expected_amount"] or Decimal(0)
        months_so_far = business_day(DEMO_NOW).month
        by_department: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        created_at = datetime(TARGET_YEAR - 1, 12, 15, 2, 0, tzinfo=UTC)
        for owner in sorted({c["owner_id"] for c in self.customers}):
            person = PERSON_OF_USER[owner]
            average = won[owner] / months_so_far * Decimal("1.1")
            base = max(MIN_TARGET, (average / TARGET_STEP).to_integral_value() * TARGET_STEP)
            for number in range(1, 13):
                period = str(month(TARGET_YEAR, number))
                amount = quantize_fen(
                    (base * Decimal(SEASONALITY[number]) / TARGET_STEP).to_integral_value()
                    * TARGET_STEP
                )
                self.target(SubjectType.PERSON, person, period, amount, created_at)
                department: str | None = DEPARTMENT_OF_PERSON[person]
                while department:
                    by_department[(department, period)] += amount
                    department = PARENT_OF_DEPARTMENT[department]
        for (department, period), amount in sorted(by_department.items()):
            self.target(SubjectType.DEPARTMENT, department, period, amount, created_at)

    def target(
        self, kind: SubjectType, subject: str, period: str, amount: Decimal, at: datetime
    ) -> None:
        self.rows["sales_targets"].append(
            {
                "id": self.new_id(),
                "subject_type": kind.value,
                "subject_id": subject,
                "period": period,
                "amount": amount,
                "currency": DEFAULT_CURRENCY,
                "created_at": at,
                "updated_at": at,
                "version": 1,
            }
        )

    # -- codes and history -----------------------------------------------------------------
    def codes(self, table: str, prefix: str, formatter: Any) -> None:
        """Codes in order of creation, numbered per year as it is in China."""
        last: dict[int, int] = defaultdict(int)
        for row in sorted(self.rows[table], key=lambda r: (r["created_at"], str(r["id"]))):
            year = _business_year(row["created_at"])
            last[year] += 1
            row["code"] = formatter(year, last[year])
        self.rows["code_counters"] += [
            {"prefix": prefix, "year": year, "last_value": value}
            for year, value in sorted(last.items())
        ]

    def history(self) -> None:
        for kind, table, fields in (
            ("opportunity", "opportunities", ("code", "name", "stage_code", "status")),
            ("expense", "expenses", ("code", "amount", "expense_category", "status")),
        ):
            for row in self.rows[table]:
                actor = row.get("owner_id") or row.get("submitter_id")
                self.rows["history"].append(
                    {
                        "id": self.new_id(),
                        "entity_type": kind,
                        "entity_id": str(row["id"]),
                        "change": "created",
                        "actor_id": actor,
                        "field": None,
                        "old": None,
                        "new": jsonable({field: row[field] for field in fields}),
                        "at": row["created_at"],
                    }
                )

    def build(self) -> dict[str, list[dict[str, Any]]]:
        for _ in range(OPPORTUNITY_COUNT):
            self.opportunity()
        self.care_activities()
        self.expenses()
        self.targets()
        self.codes("opportunities", OPPORTUNITY_PREFIX, format_opportunity_code)
        self.codes("expenses", EXPENSE_PREFIX, format_expense_code)
        self.history()
        return {table: self.rows[table] for table in PIPELINE_TABLES}


PIPELINE_TABLES = (
    "opportunities",
    "opportunity_contacts",
    "opportunity_lines",
    "opportunity_competitors",
    "stage_history",
    "activities",
    "expenses",
    "expense_approvals",
    "sales_targets",
    "history",
    "code_counters",
)
"""The tables the pipeline fills, in an order the foreign keys accept."""


def build(masters: Masters | None = None) -> dict[str, list[dict[str, Any]]]:
    """The pipeline as rows per table (no database needed), over ``masters`` (by default the
    standard process and the master lists of this module)."""
    return _Generator(masters or standard_masters()).build()


# -- loading -----------------------------------------------------------------------------------
def fill_read_models(session: Session, now: datetime) -> dict[str, int]:
    """Sales' copies of the demo org chart and customer book, through the same code that
    keeps them from org's and customer's snapshots and events."""
    models = ReadModels(session, now)
    org = org_demo.build_records(password_hash="")
    users = {user.person_id: user.id for user in org["users"]}
    book = customer_demo.build()
    kept = {
        "departments": [
            models.keep_department(
                {
                    "id": d.id,
                    "code": d.code,
                    "name": d.name,
                    "parent_id": d.parent_id,
                    "manager_id": d.manager_id,
                    "path": d.path,
                    "disabled": False,
                    "version": 1,
                }
            )
            for d in org["departments"]
        ],
        "regions": [
            models.keep_region(
                {
                    "id": r.id,
                    "code": r.code,
                    "name": r.name,
                    "parent_id": r.parent_id,
                    "path": r.path,
                    "disabled": False,
                    "version": 1,
                }
            )
            for r in org["regions"]
        ],
        "people": [
            models.keep_person(
                {
                    "id": p.id,
                    "user_id": users.get(p.id),
                    "code": p.code,
                    "name": p.name,
                    "department_id": p.department_id,
                    "mobile": p.mobile,
                    "email": p.email,
                    "status": p.status,
                    "disabled": False,
                    "version": 1,
                }
            )
            for p in org["people"]
        ],
        "customers": [models.keep_customer(CustomerSchema().dump(c)) for c in book["customers"]],
        "contacts": [models.keep_contact(ContactSchema().dump(c)) for c in book["contacts"]],
    }
    return {kind: sum(rows) for kind, rows in kept.items()}


def ensure_masters(session: Session, now: datetime) -> Masters:
    """The process, competitors, loss reasons and expense categories the pipeline uses. The
    standard process and the loss reasons are stored as the service stores them on its first
    start (unless they exist); competitors and expense categories are added where missing."""
    seed_defaults(session, now)
    current = session.scalar(
        select(SalesProcess).where(
            SalesProcess.code == PROCESS_CODE, SalesProcess.superseded_by.is_(None)
        )
    )
    if current is None:
        raise LookupError(f"the sales database has no current {PROCESS_CODE} process")
    stages = session.scalars(
        select(SalesStage).where(SalesStage.process_id == current.id).order_by(SalesStage.position)
    )
    process = define_process(
        str(current.id),
        current.code,
        current.name,
        [
            {
                "code": s.code,
                "name": s.name,
                "position": s.position,
                "probability": s.probability,
                "required_fields": list(s.required_fields),
                "outcome": s.outcome,
            }
            for s in stages
        ],
        allow_skip=current.allow_skip,
        active=current.active,
        version=current.revision,
    )
    competitor_ids = {}
    for name, strengths, weaknesses, products, price_level in COMPETITORS:
        found = session.scalar(select(Competitor).where(Competitor.name == name))
        if found is None:
            found = Competitor(
                id=master_id("competitor", name),
                name=name,
                strengths=strengths,
                weaknesses=weaknesses,
                main_products=products,
                price_level=price_level,
                created_at=now,
                updated_at=now,
            )
            session.add(found)
        competitor_ids[name] = found.id
    categories = set(session.scalars(select(ExpenseCategory.code)))
    session.add_all(
        ExpenseCategory(code=code, name=CATEGORY_LABELS[code])
        for code in DEFAULT_CATEGORIES
        if code not in categories
    )
    session.flush()
    return Masters(
        process=process,
        competitor_ids=competitor_ids,
        loss_reasons=tuple(
            session.scalars(
                select(LossReason.code).where(LossReason.active.is_(True)).order_by(LossReason.code)
            )
        ),
        expense_categories=tuple(
            session.scalars(
                select(ExpenseCategory.code)
                .where(ExpenseCategory.active.is_(True))
                .order_by(ExpenseCategory.code)
            )
        ),
    )


def is_loaded(session: Session) -> bool:
    """Whether the database holds an opportunity already."""
    return bool(session.scalar(select(exists().where(Opportunity.id.is_not(None)))))


def load_demo(session: Session, *, with_events: bool = True) -> dict[str, int]:
    """Load the data set into a sales database without opportunities; does nothing otherwise.
    Returns the number of records written per kind (empty when nothing was loaded). Sales
    announces nothing of the demo pipeline: ``with_events`` is accepted for the common command
    line and writes no event either way."""
    if is_loaded(session):
        return {}
    copies = fill_read_models(session, DEMO_NOW)
    masters = ensure_masters(session, DEMO_NOW)
    data = build(masters)
    tables = {table.name: table for table in Opportunity.metadata.sorted_tables}
    for name in PIPELINE_TABLES:
        if data[name]:
            if name == "code_counters":
                _keep_counters(session, data[name])
            else:
                session.execute(insert(tables[name]), data[name])
    session.flush()
    quotes = load_quotes(session, DEMO_NOW)
    orders = load_orders(session, DEMO_NOW)
    receivables = load_receivables(session, DEMO_NOW)
    return {
        **copies,
        **{name: len(data[name]) for name in PIPELINE_TABLES},
        **quotes,
        **orders,
        **receivables,
    }


def _keep_counters(session: Session, rows: list[dict[str, Any]]) -> None:
    """Counters at least as far as the demo's codes (the database may have its own already)."""
    for row in rows:
        found = session.get(CodeCounter, (row["prefix"], row["year"]))
        if found is None:
            session.add(CodeCounter(**row))
        else:
            found.last_value = max(found.last_value, row["last_value"])


def ensure_demo(uri: str, *, migrate: bool = True, with_events: bool = True) -> dict[str, int]:
    """Migrate the database at ``uri`` and load the demo data if it has no opportunities."""
    if migrate:
        upgrade("sales", uri)
    with SessionScope(engine_for(uri)).session() as session:
        return load_demo(session, with_events=with_events)


def main(argv: list[str] | None = None) -> None:
    logins = "salesperson sales01, their approver branch.east, manager01, admin"
    load_once("sales", ensure_demo, argv, loaded=logins, already="already has opportunities")


if __name__ == "__main__":
    main()
