import pytest

from crm_common.phones import is_mobile, normalize_mobile
from customer.domain.phones import normalize_phone, phone_key


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "+8613812345678",
        "+86 138 1234 5678",
        "86-138-1234-5678",
        "8613812345678",
        "0086 13812345678",
        "(+86) 138-1234-5678",
        "＋８６ １３８１２３４５６７８",
    ],
)
def test_mobile_forms_normalize_to_eleven_digits(raw):
    assert normalize_mobile(raw) == "13812345678"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "12812345678",  # second digit must be 3-9
        "1381234567",  # ten digits
        "138123456789",  # twelve digits
        "+85213812345678",  # Hong Kong prefix
        "021-58881234",
        "1381234567a",
        "+1 13812345678",
    ],
)
def test_non_mobiles_are_rejected(raw):
    assert not is_mobile(raw)
    with pytest.raises(ValueError):
        normalize_mobile(raw)


def test_landlines_are_tidied_and_keep_their_extension():
    assert normalize_phone("021-5888  1234") == "021-5888 1234"
    assert normalize_phone("0755-86001234 转 8001") == "0755-86001234 转 8001"
    assert normalize_phone("+86 138 1234 5678") == "13812345678"
    with pytest.raises(ValueError):
        normalize_phone("call me")
    with pytest.raises(ValueError):
        normalize_phone("12345")


def test_phone_key_matches_the_same_line_written_differently():
    assert phone_key("021-58881234") == phone_key("+86 21 5888 1234") == "02158881234"
    assert phone_key("021-58881234 转 12") == "02158881234"
    assert phone_key("+86 138-1234-5678") == "13812345678"
    assert phone_key(None) is None
    assert phone_key("021-58881234") != phone_key("021-58881235")
