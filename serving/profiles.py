"""De-identified household summaries for the pages, built from the world when a run is stored.

What a social worker sees of a family before visiting it, and no more:
  * adults: relation to the head, sex, age as a band (never the birth date), labour capacity, disability
    grade, and at most the last 4 characters of the ID number;
  * minors (under 18): only how many there are — no age, sex, schooling or health detail;
  * the village (code and name). The data contract carries no personal names, so there is none to mask;
    households are known by their pseudonymous ``household_id``.
The ID pseudonyms (HMAC, ``doudi.pseudonym``) of adults are kept apart in ``identities`` and shown only
through the audited reveal; the full ID number is never stored by doudi.

Only member records known before T (``recorded_at < T``) are used, as for features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.orm import Session

from doudi.io import World
from serving.auth import Scope
from serving.orm import HouseholdProfile, utcnow
from serving.store import parameter_rows

MINOR_AGE = 18
AGE_BANDS = (18, 30, 45, 60, 70, 80)
"""Lower edges of the adult age bands: 18-29, 30-44, 45-59, 60-69, 70-79, 80+."""
ELDERLY_AGE = 60
ADULT_FIELDS = ("relation", "sex", "age_band", "labour_capacity", "disability_grade", "id_last4")
RELATION_ORDER = {"head": 0, "spouse": 1, "parent": 2, "child": 3, "sibling": 4, "grandchild": 5, "other": 6}
_CHUNK = 2000


def age_band(age: np.ndarray) -> np.ndarray:
    """Adult ages as band labels (``"45-59"``, ``"80+"``); minors get ``"<18"``."""
    edges = np.asarray(AGE_BANDS)
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)] + [f"{edges[-1]}+"]
    position = np.searchsorted(edges, age, side="right") - 1
    out = np.where(position < 0, "<18", np.asarray(labels, dtype=object)[np.clip(position, 0, None)])
    return out.astype(object)


def _column(frame: pd.DataFrame, name: str, rows: np.ndarray) -> np.ndarray:
    """Column values at ``rows`` as objects, None for missing (all None if the column is absent)."""
    if name not in frame:
        return np.full(len(rows), None, dtype=object)
    return frame[name].to_numpy(dtype=object, na_value=None)[rows]


def _whole_years(birth: np.ndarray, as_of: pd.Timestamp) -> np.ndarray:
    """Age in whole years at ``as_of`` (NaN for an unknown birth date): one less before the birthday."""
    missing = np.isnat(birth)
    safe = np.where(missing, np.datetime64("2000-01-01", "ns"), birth)
    years = safe.astype("datetime64[Y]").astype(np.int64) + 1970
    month = safe.astype("datetime64[M]").astype(np.int64) % 12 + 1
    day = (safe.astype("datetime64[D]") - safe.astype("datetime64[M]")).astype(np.int64) + 1
    before_birthday = (month > as_of.month) | ((month == as_of.month) & (day > as_of.day))
    age = (as_of.year - years - before_birthday).astype(np.float64)
    age[missing] = np.nan
    return age


def _lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """``values`` at the positions of ``wanted`` in ``keys`` (None where absent)."""
    if not len(keys):
        return np.full(len(wanted), None, dtype=object)
    at = pd.Index(keys, dtype=object).get_indexer(pd.Index(wanted, dtype=object))  # no dtype inference
    return np.where(at >= 0, values[np.clip(at, 0, None)], None)


def household_profiles(
    world: World, as_of: pd.Timestamp, households: Sequence[str] | pd.Index
) -> pd.DataFrame:
    """Summaries of the given households at ``as_of``, built on plain arrays: this runs inside every stored
    scoring, including single-household API calls.

    Returns:
        Frame indexed by household_id with columns village_code, village_name, summary (dict: size,
        adults (list of dicts with ``ADULT_FIELDS``), minors, elderly, no_labour, disabled) and identities
        (list of dicts: relation, age_band, id_hash, id_last4 — adults with a known ID only).
    """
    as_of = pd.Timestamp(as_of).normalize()
    ids = pd.Index(
        np.asarray(households, dtype=object).astype(str).astype(object), dtype=object, name="household_id"
    )
    homes = world["households"]
    village = _lookup(
        homes["household_id"].to_numpy(dtype=object),
        homes["village_code"].to_numpy(dtype=object, na_value=None),
        ids.to_numpy(),
    )
    regions = world.get("regions")
    names = np.full(len(ids), None, dtype=object)
    if regions is not None and "name" in regions:
        names = _lookup(
            regions["region_code"].to_numpy(dtype=object),
            regions["name"].to_numpy(dtype=object, na_value=None),
            village,
        )

    members = world["members"]
    owner = ids.get_indexer(pd.Index(members["household_id"].to_numpy(dtype=object), dtype=object))
    keep = owner >= 0
    if "recorded_at" in members:
        recorded = members["recorded_at"].to_numpy(dtype="datetime64[ns]")
        keep &= np.isnat(recorded) | (recorded < as_of.to_datetime64())
    rows = np.flatnonzero(keep)
    owner = owner[rows]
    age = _whole_years(members["birth_date"].to_numpy(dtype="datetime64[ns]")[rows], as_of)
    relation = _column(members, "relation", rows)
    labour = _column(members, "labour_capacity", rows)
    grades = pd.to_numeric(members["disability_grade"], errors="coerce").to_numpy(dtype=np.float64)[rows]
    grade = np.nan_to_num(grades).astype(np.int64)
    minor = ~(age >= MINOR_AGE)  # an unknown age counts as a minor: nothing is shown about that person
    n = len(ids)
    counts = {
        "size": np.bincount(owner, minlength=n),
        "minors": np.bincount(owner, weights=minor, minlength=n),
        "elderly": np.bincount(owner, weights=age >= ELDERLY_AGE, minlength=n),
        "no_labour": np.bincount(owner, weights=(labour == "none") & ~minor, minlength=n),
        "disabled": np.bincount(owner, weights=grade > 0, minlength=n),
    }

    adults = np.flatnonzero(~minor)
    order = np.array([RELATION_ORDER.get(r, len(RELATION_ORDER)) for r in relation[adults]], dtype=np.int64)
    adults = adults[np.lexsort((-age[adults], order, owner[adults]))]
    fields = {
        "relation": relation,
        "sex": _column(members, "sex", rows),
        "age_band": age_band(np.nan_to_num(age, nan=0.0)),
        "labour_capacity": labour,
        "disability_grade": grade,
        "id_last4": _column(members, "id_last4", rows),
    }
    id_hash = _column(members, "id_hash", rows)
    adult_lists: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    identity_lists: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    columns = [fields[name][adults].tolist() for name in ADULT_FIELDS]
    for position, secret, *values in zip(owner[adults].tolist(), id_hash[adults], *columns, strict=True):
        # Formatting only: one JSON record per adult of the households a person will look at.
        record = dict(zip(ADULT_FIELDS, values, strict=True))
        adult_lists[position].append(record)
        if secret is not None:
            identity_lists[position].append(
                {
                    "relation": record["relation"],
                    "age_band": record["age_band"],
                    "id_hash": secret,
                    "id_last4": record["id_last4"],
                }
            )
    totals = {key: values.astype(np.int64).tolist() for key, values in counts.items()}
    summaries = [{**{key: totals[key][i] for key in totals}, "adults": adult_lists[i]} for i in range(n)]
    columns = {
        "village_code": village,
        "village_name": names,
        "summary": summaries,
        "identities": identity_lists,
    }
    # Object columns on purpose: inferring string dtypes costs more than the rest for one household.
    return pd.DataFrame({k: pd.Series(v, index=ids, dtype=object) for k, v in columns.items()}, index=ids)


def save_profiles(session: Session, profiles: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Replace the stored summaries of these households (in the caller's transaction)."""
    if not len(profiles):
        return
    ids = [str(i) for i in profiles.index]
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        session.execute(sa.delete(HouseholdProfile).where(HouseholdProfile.household_id.in_(chunk)))
    rows = parameter_rows({
        "household_id": ids,
        "village_code": profiles["village_code"].astype(str).tolist(),
        "village_name": profiles["village_name"].tolist(),
        "as_of": pd.Timestamp(as_of).date(),
        "summary": profiles["summary"].tolist(),
        "identities": profiles["identities"].tolist(),
        "updated_at": utcnow(),
    }, len(ids))
    session.execute(sa.insert(HouseholdProfile.metadata.tables[HouseholdProfile.__tablename__]), rows)


def get_profile(session: Session, scope: Scope, household_id: str) -> HouseholdProfile | None:
    """The stored summary of a household in the caller's scope (None if none or outside it)."""
    return session.scalar(
        sa.select(HouseholdProfile).where(
            HouseholdProfile.household_id == household_id, scope.clause(HouseholdProfile.village_code)
        )
    )
