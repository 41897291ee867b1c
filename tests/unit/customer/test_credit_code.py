import pytest
from hypothesis import given
from hypothesis import strategies as st

from customer.domain.credit_code import (
    ALPHABET,
    check_character,
    credit_code_problem,
    is_valid_credit_code,
    make_credit_code,
    normalize_credit_code,
    validate_credit_code,
)

REAL_CODES = [
    "91350100M000100Y43",
    "91330100716105852F",
    "9144030071526726XG",
    "914403001922038216",
]


@pytest.mark.parametrize("code", REAL_CODES)
def test_published_codes_are_valid(code):
    assert is_valid_credit_code(code)


def test_lower_case_spaces_and_full_width_are_normalized():
    assert validate_credit_code(" 9135 0100-m000 100y43 ") == "91350100M000100Y43"
    assert validate_credit_code("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("91350100M000100Y4", "18 characters"),
        ("91350100M000100Y433", "18 characters"),
        ("91350100M000100Y44", "check character is 4, expected 3"),
        ("91350100M0001O0Y43", "not allowed"),
        ("913501I0M000100Y43", "not allowed"),
        ("91AB0100M000100Y43", "administrative division"),
    ],
)
def test_invalid_codes_say_why(code, fragment):
    problem = credit_code_problem(normalize_credit_code(code))
    assert problem is not None and fragment in problem
    with pytest.raises(ValueError):
        validate_credit_code(code)


def test_every_single_character_typo_is_caught():
    code = REAL_CODES[0]
    for position in range(18):
        for replacement in ALPHABET:
            if replacement == code[position]:
                continue
            typo = code[:position] + replacement + code[position + 1 :]
            assert not is_valid_credit_code(typo), typo


def test_make_credit_code_completes_with_the_check_character():
    assert make_credit_code("91350100M000100Y4") == "91350100M000100Y43"
    with pytest.raises(ValueError):
        check_character("91350100M000100")


@given(st.text(alphabet=ALPHABET, min_size=17, max_size=17).map(lambda s: s[:2] + "310000" + s[8:]))
def test_generated_codes_round_trip(first17):
    code = make_credit_code(first17)
    assert is_valid_credit_code(code)
    # Swapping two different adjacent characters is detected as well.
    for i in range(17):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2 :]
            assert not is_valid_credit_code(swapped)
