import pytest

from crm_common.errors import ValidationFailed


@pytest.fixture
def catalogue(service, make_customer):
    """A small customer book: names, regions, owners, tags and contacts to search in."""
    rows = [
        (
            "华东机电设备有限公司",
            "华东/上海",
            "formal",
            "A",
            "u-sales-01",
            ["重点客户", "战略合作"],
        ),
        ("苏州恒达轴承有限公司", "华东/江苏/苏州", "formal", "B", "u-sales-02", ["重点客户"]),
        ("北京北方五金工具有限公司", "华北/北京", "potential", "C", "u-sales-03", []),
        ("广州南粤阀门有限公司", "华南/广东/广州", "dormant", "VIP", "u-sales-05", ["战略合作"]),
        ("华东区液压件厂", "华东/浙江/宁波", "formal", "A", "u-sales-01", []),
        (
            "成都西蜀电气自动化有限公司",
            "西南/四川/成都",
            "potential",
            None,
            "u-sales-06",
            ["重点客户"],
        ),
    ]
    made = {}
    for name, region, status, category, owner, tags in rows:
        created = make_customer(
            name,
            region=region,
            category=category,
            owner_id=owner,
            tags=tags,
            phone=f"0{len(made) + 10}-6677{len(made):04d}",
        )
        if status != "potential":
            created = service.update_customer(
                created["id"], {"status": "formal"}, created["version"]
            )
            if status == "dormant":
                created = service.update_customer(
                    created["id"], {"status": "dormant"}, created["version"]
                )
        made[name] = created
    service.create_contact(
        made["广州南粤阀门有限公司"]["id"], {"name": "欧阳建华", "mobile": "+86 139 2233 4455"}
    )
    return made


def names(result):
    return sorted(item["name"] for item in result["items"])


def test_partial_chinese_name_finds_the_customer(service, catalogue):
    assert names(service.list_customers({"q": "华东"})) == [
        "华东区液压件厂",
        "华东机电设备有限公司",
    ]
    assert names(service.list_customers({"q": "轴承"})) == ["苏州恒达轴承有限公司"]


def test_search_by_code_phone_contact_name_and_mobile(service, catalogue):
    target = catalogue["北京北方五金工具有限公司"]
    assert names(service.list_customers({"q": target["code"]})) == [target["name"]]
    assert names(service.list_customers({"q": target["code"].lower()})) == [target["name"]]
    assert names(service.list_customers({"q": target["phone"]})) == [target["name"]]
    assert names(service.list_customers({"q": "欧阳"})) == ["广州南粤阀门有限公司"]
    assert names(service.list_customers({"q": "2233 4455"})) == ["广州南粤阀门有限公司"]
    assert names(service.list_customers({"q": "+86 13922334455"})) == ["广州南粤阀门有限公司"]


def test_like_wildcards_in_the_query_are_literal(service, catalogue):
    assert service.list_customers({"q": "%"})["items"] == []
    assert service.list_customers({"q": "_"})["items"] == []


def test_filters_combine(service, catalogue):
    assert names(service.list_customers({"status": "formal", "region": "华东"})) == [
        "华东区液压件厂",
        "华东机电设备有限公司",
        "苏州恒达轴承有限公司",
    ]
    assert names(service.list_customers({"region": "华东/江苏"})) == ["苏州恒达轴承有限公司"]
    assert names(service.list_customers({"category": "A,VIP"})) == [
        "华东区液压件厂",
        "华东机电设备有限公司",
        "广州南粤阀门有限公司",
    ]
    assert names(service.list_customers({"owner_id": "u-sales-01", "q": "机电"})) == [
        "华东机电设备有限公司"
    ]
    assert names(service.list_customers({"status": ["dormant", "potential"]})) == [
        "北京北方五金工具有限公司",
        "广州南粤阀门有限公司",
        "成都西蜀电气自动化有限公司",
    ]


def test_tags_filter_means_all_of_them(service, catalogue):
    assert names(service.list_customers({"tags": ["重点客户"]})) == [
        "华东机电设备有限公司",
        "成都西蜀电气自动化有限公司",
        "苏州恒达轴承有限公司",
    ]
    assert names(service.list_customers({"tags": "重点客户,战略合作"})) == ["华东机电设备有限公司"]
    assert service.list_customers({"tags": ["重点客户", "没有的标签"]})["items"] == []


def test_region_filter_matches_whole_levels_only(service, catalogue):
    assert service.list_customers({"region": "华东/江"})["items"] == []


@pytest.mark.parametrize("sort", ["name", "-name", "code", "-code", "created_at", "-created_at"])
def test_keyset_pages_cover_every_customer_once_in_order(service, catalogue, sort):
    seen, cursor = [], None
    while True:
        page = service.list_customers({"sort": sort, "limit": 4, "cursor": cursor})
        assert len(page["items"]) <= 4
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(catalogue) == len({c["id"] for c in seen})
    key = sort.lstrip("-")
    values = [c[key] for c in seen]
    assert values == sorted(values, reverse=sort.startswith("-"))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"cursor": "garbage"}, "cursor"),
        ({"sort": "phone"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"status": "unknown"}, "status"),
        ({"region": "火星"}, "region"),
        ({"owner": "x"}, "owner"),
    ],
)
def test_bad_queries_are_validation_errors(service, catalogue, query, field):
    with pytest.raises(ValidationFailed) as info:
        service.list_customers(query)
    assert field in {path.split(".")[0] for path in info.value.field_errors}


def test_page_size_is_bounded(service, make_customer):
    for i in range(3):
        make_customer(f"测试客户{i}号有限公司")
    assert len(service.list_customers({"limit": 100000})["items"]) == 3
    assert service.list_customers({"limit": "2"})["next_cursor"]
