"""Properties of the feature registry: point-in-time correctness, order independence, metadata.

Point in time: records dated on/after T, or recorded on/after T (late arrivals), must change no
feature at T, however extreme their values. The registry enforces this for every builder, so the
properties run over the whole registry on seeded random worlds.
"""

from __future__ import annotations

import dataclasses
import re
import string
from functools import cache

import numpy as np
import pandas as pd
import pytest
from factories import random_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import features
from doudi.contract import TABLES
from features import GROUPS, REGISTRY, build_features, reason_text
from features.registry import KINDS, feature, registry_version

START = pd.Timestamp("2023-01-01")
MONTHS = 24
PROPERTY = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def base_world(seed: int) -> dict[str, pd.DataFrame]:
    return random_world(14, MONTHS, seed, start_month="2023-01")


as_of_dates = st.integers(min_value=90, max_value=MONTHS * 31 - 1).map(
    lambda days: START + pd.Timedelta(days=days))
seeds = st.integers(min_value=0, max_value=3)


def _extreme(column, rng: np.random.Generator, size: int) -> object:
    if column.allowed is not None:
        return rng.choice(column.allowed, size)
    if column.dtype == "float":
        return np.full(size, column.le if column.le is not None else 1e7)
    if column.dtype == "int":
        return np.full(size, int(column.le) if column.le is not None else 9, dtype=np.int64)
    if column.dtype == "bool":
        return np.ones(size, dtype=bool)
    return None


def _month_on_or_after(dates: pd.DatetimeIndex) -> list[str]:
    """The month of each date, or the next month when that month starts before the date."""
    periods = dates.to_period("M")
    starts = periods.to_timestamp()
    return [str(p + (1 if s < d else 0)) for p, s, d in zip(periods, starts, dates, strict=True)]


MODES = ("future", "late", "advance")


def with_unknowable_records(world, as_of: pd.Timestamp, seed: int, *, mode: str) -> dict[str, pd.DataFrame]:
    """``world`` plus copies of random rows of every time-varying table (and members) with extreme values,
    none of them knowable at T. ``mode``: "future" = dated on/after T and recorded later still; "late" =
    dated before T but recorded on/after T; "advance" = dated on/after T but recorded before T (a
    scheduled payment, a published standard)."""
    late = mode == "late"
    rng = np.random.default_rng(seed)
    ids = world["households"]["household_id"].to_numpy()
    villages = world["households"]["village_code"].to_numpy()
    out = dict(world)
    for name, table in TABLES.items():
        frame = world.get(name)
        event = table.event or ("birth_date" if name == "members" else None)
        if frame is None or frame.empty or event is None:
            continue
        size = 5
        extra = frame.sample(size, replace=True, random_state=seed).reset_index(drop=True)
        for column in table.columns:
            value = _extreme(column, rng, size)
            if value is not None and column.name in extra and column.name not in (event, "recorded_at"):
                extra[column.name] = pd.Series(value).astype(extra[column.name].dtype)
        if "household_id" in extra:
            extra["household_id"] = pd.Series(rng.choice(ids, size)).astype(extra["household_id"].dtype)
        if name == "disasters":  # a whole county, so that every household of it is exposed
            extra["region_code"] = pd.Series([v[:6] + "000000" for v in rng.choice(villages, size)],
                                             dtype=extra["region_code"].dtype)
        for key in table.primary_key:
            if key.endswith("_id") and key != "household_id":
                extra[key] = (extra[key].astype("string") + f"-x{seed}").astype(extra[key].dtype)
        after = pd.DatetimeIndex(as_of + pd.to_timedelta(rng.integers(0, 400, size), unit="D"))
        if late:
            before = pd.DatetimeIndex(as_of - pd.to_timedelta(rng.integers(1, 400, size), unit="D"))
            when = before
        else:
            when = after
        if table.column(event).dtype == "month":
            months = (list(before.to_period("M").astype(str)) if late else _month_on_or_after(after))
            extra[event] = pd.Series(months, dtype=extra[event].dtype)
        else:
            extra[event] = when.astype("datetime64[ns]")
        for other in ("admission_date", "start_date"):
            if other in extra and other != event:
                extra[other] = (when - pd.Timedelta(days=3)).astype("datetime64[ns]")
        if "end_date" in extra and event != "end_date":
            extra["end_date"] = (when + pd.Timedelta(days=5)).astype("datetime64[ns]")
        if mode == "advance":
            recorded = as_of - pd.to_timedelta(rng.integers(1, 60, size), unit="D")
        else:
            recorded = after if late else after + pd.to_timedelta(rng.integers(0, 60, size), unit="D")
        extra["recorded_at"] = recorded.astype("datetime64[ns]")
        out[name] = pd.concat([frame, extra], ignore_index=True)
    return out


@PROPERTY
@given(seed=seeds, as_of=as_of_dates, extra_seed=st.integers(0, 10_000), mode=st.sampled_from(MODES))
def test_records_dated_or_recorded_on_or_after_as_of_change_nothing(seed, as_of, extra_seed, mode):
    world = base_world(seed)
    expected = build_features(world, as_of)
    changed = build_features(with_unknowable_records(world, as_of, extra_seed, mode=mode), as_of)
    pd.testing.assert_frame_equal(changed, expected, check_exact=True)


@PROPERTY
@given(seed=seeds, as_of=as_of_dates, extra_seed=st.integers(0, 10_000))
def test_late_arriving_records_are_excluded(seed, as_of, extra_seed):
    world = base_world(seed)
    expected = build_features(world, as_of)
    changed = build_features(with_unknowable_records(world, as_of, extra_seed, mode="late"), as_of)
    pd.testing.assert_frame_equal(changed, expected, check_exact=True)


def test_the_generator_of_unknowable_records_does_reach_the_features():
    # Guard for the two properties above: the same records, made known, do change features.
    world = base_world(0)
    as_of = pd.Timestamp("2024-06-15")
    expected = build_features(world, as_of)
    later = as_of + pd.Timedelta(days=500)
    for mode in MODES:
        unknowable = with_unknowable_records(world, as_of, 1, mode=mode)
        assert not build_features(unknowable, later).equals(build_features(world, later)), mode
        assert build_features(unknowable, as_of).equals(expected), mode


@PROPERTY
@given(seed=seeds, as_of=as_of_dates, order_seed=st.integers(0, 10_000))
def test_row_order_of_every_table_changes_nothing(seed, as_of, order_seed):
    world = base_world(seed)
    rng = np.random.default_rng(order_seed)
    shuffled = {name: frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
                for name, frame in world.items()}
    expected = build_features(world, as_of)
    # Households come out in households-table order: compare by id. Sums may differ in the last bits.
    got = build_features(shuffled, as_of).loc[expected.index]
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9, check_index_type=False)


@PROPERTY
@given(seed=seeds, as_of=as_of_dates, data=st.data())
def test_a_subset_of_households_equals_the_full_table_restricted(seed, as_of, data):
    world = base_world(seed)
    ids = list(world["households"]["household_id"])
    subset = data.draw(st.lists(st.sampled_from(ids), min_size=1, max_size=len(ids), unique=True))
    full = build_features(world, as_of)
    part = build_features(world, as_of, households=pd.Index(subset))
    pd.testing.assert_frame_equal(part, full.loc[subset], check_index_type=False)


# --- registry metadata ------------------------------------------------------------------------------

REQUIRED = {
    "income_pc_12m": "income", "income_to_monitoring_line": "income", "income_to_dibao_standard": "income",
    "income_to_edge_line": "income", "income_drop_3m_vs_12m": "income", "medical_oop_3m": "medical",
    "medical_oop_12m": "medical", "medical_oop_share_12m": "medical", "serious_illness": "medical",
    "disaster_loss_12m": "disaster", "uninsured_job_loss_6m": "employment", "lifted_out": "assistance",
    "months_since_lifted": "assistance", "cpi_yoy": "region", "food_cpi_yoy": "region",
    "county_code": "region", "urban_rural": "region", "household_size": "household",
}


def test_shared_feature_names_exist_in_their_groups():
    assert {name: REGISTRY[name].group for name in REQUIRED if name in REGISTRY} == REQUIRED
    assert REGISTRY["county_code"].kind == REGISTRY["urban_rural"].kind == "categorical"


def test_every_spec_is_complete():
    assert 40 <= len(REGISTRY) <= 70
    assert {spec.group for spec in REGISTRY.values()} == set(GROUPS)
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert spec.group in GROUPS and spec.kind in KINDS and spec.monotone in (-1, 0, 1)
        assert spec.source and all(source in TABLES for source in spec.source), name
        assert spec.unit and spec.description and spec.label_zh and spec.label_en, name
        assert re.search(r"[\u4e00-\u9fff]", spec.zh) and re.search(r"[\u4e00-\u9fff]", spec.label_zh), name
        assert spec.window_months is None or spec.window_months > 0
        assert callable(spec.builder)


def _rendered(template: str, value: float) -> str | None:
    """How ``template`` renders ``{value}``, e.g. ``45%`` for ``{value:.0%}`` (None if not shown)."""
    for _, field, spec, _ in string.Formatter().parse(template):
        if field == "value":
            return format(value, spec)
    return None


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(n for n, s in REGISTRY.items() if s.kind == "numeric")),
       value=st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), lang=st.sampled_from(["zh", "en"]))
def test_reason_text_states_the_value(name, value, lang):
    spec = REGISTRY[name]
    text = reason_text(name, value, lang)
    assert "{" not in text and ("_" not in name or name not in text)  # never a bare identifier
    alternative = spec.alt_below is not None and value < spec.alt_below
    template = (spec.zh_alt if lang == "zh" else spec.en_alt) if alternative else (
        spec.zh if lang == "zh" else spec.en)
    shown = _rendered(template, abs(value) if alternative else value)
    if shown is not None:
        assert shown in text
    else:  # a 0/1 flag: the sentence itself is the value, and the two values read differently
        assert reason_text(name, 1.0, lang) != reason_text(name, 0.0, lang)


@pytest.mark.parametrize("name", sorted(REGISTRY))
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_reason_text_handles_missing_and_categorical_values(name, lang):
    missing = reason_text(name, float("nan"), lang)
    assert (REGISTRY[name].label_zh if lang == "zh" else REGISTRY[name].label_en) in missing
    assert reason_text(name, None, lang) == missing == reason_text(name, pd.NA, lang)
    if REGISTRY[name].kind == "categorical":
        assert "530102" in reason_text(name, "530102", lang) or name != "county_code"


def test_version_changes_when_a_spec_changes(monkeypatch):
    assert features.REGISTRY_VERSION == registry_version()
    assert re.fullmatch(r"[0-9a-f]{12}", features.REGISTRY_VERSION)
    spec = REGISTRY["income_pc_12m"]
    monkeypatch.setitem(REGISTRY, "income_pc_12m", dataclasses.replace(spec, window_months=24))
    assert registry_version() != features.REGISTRY_VERSION


@pytest.mark.parametrize("change, message", [
    ({"name": "income_pc_12m"}, "declared twice"),
    ({"group": "weather"}, "group"),
    ({"zh": "收入很低"}, "does not state the value"),
    ({"source": "bank_statements"}, "unknown source"),
    ({"kind": "categorical", "monotone": 1}, "categorical"),
])
def test_bad_declarations_are_rejected(change, message):
    declaration = dict(name="a_new_feature", group="income", source="income", window_months=3, unit="yuan",
                       monotone=1, zh="收入{value:.0f}元", en="Income {value:.0f} yuan", label_zh="收入",
                       label_en="Income", description="test")
    with pytest.raises(ValueError, match=message):
        feature(**{**declaration, **change})(lambda snap: np.zeros(snap.n))
    assert "a_new_feature" not in REGISTRY
