from dataclasses import dataclass

import pytest

from customer.domain.duplicates import (
    SAME_CREDIT_CODE,
    SAME_NAME,
    SAME_PHONE,
    SIMILAR_NAME,
    Probe,
    find_duplicates,
)
from customer.domain.names import (
    bigrams,
    length_bounds,
    name_similarity,
    normalize_company_name,
)


@dataclass
class Existing:
    id: str
    code: str
    name: str
    credit_code: str | None = None
    phone: str | None = None


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("上海华东机电设备有限公司", "上海华东机电设备"),
        ("上海华东机电设备有限责任公司", "上海华东机电设备"),
        ("上海华东机电设备股份有限公司", "上海华东机电设备"),
        ("上海华东机电设备(中国)有限公司", "上海华东机电设备"),
        ("上海华东机电设备（中国）集团有限公司", "上海华东机电设备"),
        ("上海 华东·机电设备 有限公司。", "上海华东机电设备"),
        ("苏州恒达轴承制造有限公司", "苏州恒达轴承"),
        ("ACME Tools Co., Ltd.", "acmetools"),
    ],
)
def test_names_are_normalized_to_their_distinctive_part(name, key):
    assert normalize_company_name(name) == key


def test_a_name_that_is_only_a_legal_form_keeps_a_key():
    assert normalize_company_name("有限公司")
    assert normalize_company_name("  ") == ""


def test_similarity_is_one_for_the_same_company_in_different_legal_forms():
    assert name_similarity("华东机电设备有限公司", "华东机电设备股份有限公司") == 1.0
    assert 0.88 < name_similarity("宁波精工液压件有限公司", "宁波精工液压有限公司") < 1.0
    assert name_similarity("上海华东机电有限公司", "广州南方轴承有限公司") < 0.3


def test_one_different_character_in_a_short_name_is_not_similar_enough():
    # 华东 vs 华北 are different companies; the threshold must not call them duplicates.
    probe = Probe(name="华北机电设备有限公司")
    assert find_duplicates(probe, [Existing("1", "C2026000001", "华东机电设备有限公司")]) == []


def test_same_credit_code_is_a_certain_duplicate():
    existing = [
        Existing("1", "C2026000001", "完全不同的名字有限公司", credit_code="91350100M000100Y43"),
    ]
    [candidate] = find_duplicates(Probe("上海华东机电", credit_code="91350100m000100y43"), existing)
    assert candidate.reasons == [SAME_CREDIT_CODE]
    assert candidate.score == 1.0
    assert candidate.as_dict() == {
        "id": "1",
        "code": "C2026000001",
        "name": "完全不同的名字有限公司",
        "score": 1.0,
        "reasons": [SAME_CREDIT_CODE],
    }


def test_reasons_accumulate_and_rank_candidates():
    existing = [
        Existing("1", "C2026000001", "上海华东机电设备有限公司", phone="021-58881234"),
        Existing("2", "C2026000002", "上海华东机电设备股份有限公司"),
        Existing("3", "C2026000003", "宁波海天液压有限公司", phone="+86 21 5888 1234"),
        Existing("4", "C2026000004", "上海华东机电设备工程有限公司"),
        Existing("5", "C2026000005", "天津北方五金工具有限公司"),
    ]
    probe = Probe("上海华东机电设备有限公司", phone="02158881234")
    found = find_duplicates(probe, existing)
    assert [c.code for c in found] == ["C2026000001", "C2026000002", "C2026000004", "C2026000003"]
    assert found[0].reasons == [SAME_NAME, SAME_PHONE]
    assert found[1].reasons == [SAME_NAME]
    assert found[2].reasons == [SIMILAR_NAME]
    assert found[3].reasons == [SAME_PHONE]
    assert found[0].score > found[1].score > found[2].score > found[3].score
    assert 0 < found[3].score < 1


def test_very_similar_names_are_reported_with_their_reason():
    existing = [Existing("1", "C2026000001", "宁波精工液压件有限公司")]
    [candidate] = find_duplicates(Probe("宁波精工液压有限公司"), existing)
    assert candidate.reasons == [SIMILAR_NAME]
    assert 0.85 < candidate.score < 0.95


def test_no_reason_no_candidate():
    existing = [Existing("1", "C2026000001", "重庆西南阀门有限公司", "91500000MA5U7AAA1A", "023-1")]
    assert find_duplicates(Probe("昆明云岭电气有限公司", None, None), existing) == []


def test_limit_keeps_the_best():
    existing = [Existing(str(i), f"C2026{i:06d}", "华东机电有限公司") for i in range(1, 30)]
    found = find_duplicates(Probe("华东机电有限公司"), existing, limit=5)
    assert [c.code for c in found] == [f"C2026{i:06d}" for i in range(1, 6)]


def test_prefilter_helpers_do_not_lose_similar_names():
    key = normalize_company_name("宁波精工液压件有限公司")
    other = normalize_company_name("宁波精工液压有限公司")
    low, high = length_bounds(len(key), 0.88)
    assert low <= len(other) <= high
    assert set(bigrams(key)) & set(bigrams(other))
    assert bigrams("ab") == ["ab"] and bigrams("a") == ["a"] and bigrams("") == []
