"""Resident ID numbers (居民身份证号码, GB 11643): validation and keyed pseudonyms.

An ID number is 18 characters: region (6 digits), birth date (8, ``YYYYMMDD``), sequence (3; odd for
men, even for women) and a check character computed by ISO 7064 MOD 11-2. doudi never stores or
shows an ID number: on ingest it is replaced by an HMAC-SHA256 pseudonym keyed by
``DOUDI_ID_HMAC_KEY`` (the same person gets the same pseudonym in every extract, so records join,
while the number cannot be recovered without the key) and its last 4 characters, the most ever shown.
Masking the middle digits instead would not de-identify anyone: region and birth date are guessable.

Worked example: for ``11010519491231002`` the weighted sum of the digits is 167, 167 mod 11 = 2, and
position 2 of ``10X98765432`` is ``X``: the full number is ``11010519491231002X``.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd

from doudi.io import FIRST_DATE, LAST_DATE, ContractError, Violation
from doudi.settings import Settings

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
FORMAT = r"^[0-9]{17}[0-9X]$"
MIN_KEY_BYTES = 16

PROBLEMS = {
    "length": "is not 18 characters long",
    "characters": "has characters other than 17 digits and a final digit or X",
    "birth_date": "does not hold a real birth date (characters 7-14, YYYYMMDD, 1900-2100)",
    "check_char": "has a wrong check character (GB 11643, ISO 7064 MOD 11-2)",
}
"""What can be wrong with an ID number, in the order it is checked (first problem wins)."""

_KEY_HELP = (
    "set DOUDI_ID_HMAC_KEY to a long random secret (at least 16 characters, e.g. the output of "
    "`python -c 'import secrets; print(secrets.token_hex(32))'`) and keep it: the same key must be used "
    "for every ingest so that pseudonyms stay stable"
)


class PseudonymKeyMissing(ContractError):
    """Resident ID numbers are present but no (usable) HMAC key is configured."""

    def __init__(self, reason: str):
        super().__init__([Violation("members", None, "id_number", reason, rule="pseudonym_key")])


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of an ID number.

    Raises:
        ValueError: ``first17`` is not exactly 17 ASCII digits.
    """
    if len(first17) != 17 or not all("0" <= ch <= "9" for ch in first17):
        raise ValueError("the first 17 characters of a resident ID number must be 17 digits")
    total = sum(int(digit) * weight for digit, weight in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def normalize_id_numbers(values: pd.Series) -> pd.Series:
    """Strip blanks and upper-case a trailing ``x`` (common in exports); missing stays missing."""
    text = values.astype("string").str.strip().str.upper()
    return text.mask(text == "")


def id_number_problems(values: pd.Series) -> pd.Series:
    """The first problem of each ID number (a key of ``PROBLEMS``), missing where valid or absent.

    Vectorised: the check characters of all well-formed numbers are computed in one matrix product.
    """
    ids = normalize_id_numbers(values)
    problems = pd.Series(pd.NA, index=values.index, dtype="string")
    present = ids.notna().to_numpy()
    length_ok = (ids.str.len() == 18).fillna(False).to_numpy(dtype=bool)
    problems[present & ~length_ok] = "length"
    form_ok = ids.str.fullmatch(FORMAT).fillna(False).to_numpy(dtype=bool)
    problems[present & length_ok & ~form_ok] = "characters"
    date_ok = id_birth_dates(ids.where(form_ok)).notna().to_numpy()
    problems[form_ok & ~date_ok] = "birth_date"
    check_ok = np.zeros(len(ids), dtype=bool)
    if form_ok.any():
        check_ok[form_ok] = _check_chars_match(ids[form_ok].to_numpy(dtype=str))
    problems[form_ok & date_ok & ~check_ok] = "check_char"
    return problems


def is_valid_id_number(value: str | pd.Series | None) -> bool | pd.Series:
    """Whether an ID number (or each of a Series) is well-formed, dated and check-summed.

    A lower-case final ``x`` and surrounding blanks are accepted. Missing values are not valid.
    """
    if isinstance(value, pd.Series):
        present = normalize_id_numbers(value).notna()
        return present & id_number_problems(value).isna()
    if value is None:
        return False
    single = pd.Series([value], dtype="string")
    return bool(is_valid_id_number(single).iloc[0])


def id_birth_dates(values: pd.Series) -> pd.Series:
    """Birth dates held in ID numbers (characters 7-14); NaT where absent or not a real date."""
    digits = normalize_id_numbers(values).str.slice(6, 14)
    codes, uniques = pd.factorize(digits, use_na_sentinel=True)
    dates = pd.to_datetime(pd.Series(uniques, dtype="string"), format="%Y%m%d", errors="coerce")
    dates = dates.where((dates >= FIRST_DATE) & (dates <= LAST_DATE)).astype("datetime64[ns]")
    return pd.Series(pd.array(dates).take(codes, allow_fill=True), index=values.index)


def id_sexes(values: pd.Series) -> pd.Series:
    """``M`` or ``F`` from the sequence digit (character 17: odd for men); missing where not a digit."""
    digit = normalize_id_numbers(values).str.slice(16, 17)
    sexes = pd.Series(pd.NA, index=values.index, dtype="string")
    sexes[digit.isin(list("13579")).fillna(False).to_numpy(dtype=bool)] = "M"
    sexes[digit.isin(list("02468")).fillna(False).to_numpy(dtype=bool)] = "F"
    return sexes


def pseudonymize_ids(values: pd.Series, key: bytes) -> tuple[pd.Series, pd.Series]:
    """Replace ID numbers by their HMAC-SHA256 pseudonym (hex) and their last 4 characters.

    The numbers are normalised first (blanks stripped, ``x`` upper-cased), so one person gets one
    pseudonym. Missing numbers give missing pseudonyms.

    Args:
        values: resident ID numbers (validated beforehand).
        key: the HMAC key (``hmac_key(settings)``).

    Returns:
        ``(id_hash, id_last4)``, both ``string`` Series on the index of ``values``.
    """
    _check_key(key)
    ids = normalize_id_numbers(values)
    codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    # HMAC has no vectorised form; hashing each distinct number once costs ~1 µs per person.
    digests = pd.array([hmac.new(key, str(number).encode("ascii", "replace"), hashlib.sha256).hexdigest()
                        for number in uniques], dtype="string")
    id_hash = pd.Series(digests.take(codes, allow_fill=True), index=values.index, dtype="string")
    return id_hash, ids.str.slice(-4)


def hmac_key(settings: Settings | None = None) -> bytes:
    """The pseudonym key from ``DOUDI_ID_HMAC_KEY``.

    Raises:
        PseudonymKeyMissing: no key is set, or it is shorter than 16 bytes. There is no default key.
    """
    settings = settings if settings is not None else Settings()
    secret = settings.id_hmac_key
    key = secret.get_secret_value().encode("utf-8") if secret is not None else b""
    _check_key(key)
    return key


def _check_key(key: bytes) -> None:
    if not key:
        raise PseudonymKeyMissing(f"resident ID numbers present but no pseudonym key is set; {_KEY_HELP}")
    if len(key) < MIN_KEY_BYTES:
        raise PseudonymKeyMissing(f"the pseudonym key is too short ({len(key)} bytes); {_KEY_HELP}")


def _check_chars_match(ids: np.ndarray) -> np.ndarray:
    """Whether the 18th character of each well-formed ID number is its ISO 7064 MOD 11-2 check char."""
    codes = np.frombuffer("".join(ids).encode("ascii"), dtype=np.uint8).reshape(-1, 18)
    total = (codes[:, :17].astype(np.int64) - ord("0")) @ np.array(WEIGHTS, dtype=np.int64)
    expected = np.frombuffer(CHECK_CHARS.encode("ascii"), dtype=np.uint8)[total % 11]
    return expected == codes[:, 17]
