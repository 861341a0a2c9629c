"""Resident ID numbers: GB 11643 check characters and keyed pseudonyms (doudi/pseudonym.py)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from doudi.pseudonym import (
    PseudonymKeyMissing,
    hmac_key,
    id_birth_dates,
    id_check_char,
    id_number_problems,
    id_sexes,
    is_valid_id_number,
    pseudonymize_ids,
)
from doudi.settings import Settings

KEY = b"test-only-key-0123456789abcdef"


def weighted_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 rule written out independently: sum of digit * 2^(17 - i) mod 11."""
    total = sum(int(digit) * pow(2, 17 - i, 11) for i, digit in enumerate(first17))
    return "10X98765432"[total % 11]


def test_known_numbers() -> None:
    assert id_check_char("11010519491231002") == "X"
    assert is_valid_id_number("11010519491231002X")
    assert is_valid_id_number(" 11010519491231002x ")  # exports often hold a lower-case x and blanks
    assert not is_valid_id_number("110105194912310021")
    assert not is_valid_id_number("11010519491231002")
    assert not is_valid_id_number(None)
    with pytest.raises(ValueError, match="17 digits"):
        id_check_char("1101051949123100X")


def test_problems_are_named_in_order() -> None:
    ids = pd.Series(["11010519491231002X", "1101051949123100", "11010519491231002Y", "11010519491331002X",
                     "110105194912310021", None, ""])
    assert id_number_problems(ids).tolist() == [pd.NA, "length", "characters", "birth_date", "check_char",
                                                pd.NA, pd.NA]
    assert is_valid_id_number(ids).tolist() == [True, False, False, False, False, False, False]


def test_birth_date_and_sex_inside() -> None:
    ids = pd.Series(["11010519491231002X", "440524188001010014", None])
    assert id_birth_dates(ids).tolist()[:2] == [pd.Timestamp("1949-12-31"), pd.NaT]  # 1880 is not plausible
    assert id_sexes(ids).tolist() == ["F", "M", pd.NA]


digits = st.text(alphabet="0123456789", min_size=1, max_size=1)
births = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    region = "".join(draw(digits) for _ in range(6))
    sequence = "".join(draw(digits) for _ in range(3))
    first17 = region + draw(births).strftime("%Y%m%d") + sequence
    return first17 + id_check_char(first17)


@given(id_numbers())
def test_generated_numbers_are_valid_and_match_the_written_out_rule(number: str) -> None:
    assert number[-1] == weighted_check_char(number[:17])
    assert is_valid_id_number(number)


@given(id_numbers(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_every_single_character_change_is_caught(number: str, position: int, replacement: str) -> None:
    changed = number[:position] + replacement + number[position + 1:]
    if changed != number:
        assert not is_valid_id_number(changed)


@given(id_numbers(), st.integers(0, 15))
def test_every_swap_of_neighbouring_digits_is_caught(number: str, position: int) -> None:
    swapped = number[:position] + number[position + 1] + number[position] + number[position + 2:]
    if swapped != number:
        assert not is_valid_id_number(swapped)


def test_pseudonyms_are_keyed_stable_and_normalised() -> None:
    ids = pd.Series(["11010519491231002X", " 11010519491231002x", "530102198001150013", None],
                    index=[5, 6, 7, 8])
    id_hash, last4 = pseudonymize_ids(ids, KEY)
    expected = hmac.new(KEY, b"11010519491231002X", hashlib.sha256).hexdigest()
    assert id_hash.index.tolist() == [5, 6, 7, 8]
    assert id_hash.tolist()[:2] == [expected, expected]
    assert id_hash.iloc[2] != expected and pd.isna(id_hash.iloc[3])
    assert last4.tolist() == ["002X", "002X", "0013", pd.NA]
    other_hash, _ = pseudonymize_ids(ids, b"another-key-0123456789")
    assert (other_hash.dropna() != id_hash.dropna()).all()


def test_no_default_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOUDI_ID_HMAC_KEY", raising=False)
    with pytest.raises(PseudonymKeyMissing, match="DOUDI_ID_HMAC_KEY"):
        hmac_key(Settings())
    with pytest.raises(PseudonymKeyMissing, match="DOUDI_ID_HMAC_KEY"):
        pseudonymize_ids(pd.Series(["11010519491231002X"]), b"")
    monkeypatch.setenv("DOUDI_ID_HMAC_KEY", "short")
    with pytest.raises(PseudonymKeyMissing, match="too short"):
        hmac_key()
    monkeypatch.setenv("DOUDI_ID_HMAC_KEY", KEY.decode())
    assert hmac_key() == KEY
