"""What features keep between builds (encoded region tables, region-level intermediates) never changes a
value: a one-household world sharing the server's region tables gives that household's row of the full
build, and a different region table, or another as-of date, is never served from what was kept."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from factories import random_world

import features
from doudi.io import World

REGION_TABLES = ("regions", "standards", "disasters")
AS_OF = pd.Timestamp("2025-03-01")


@pytest.fixture(scope="module")
def world() -> World:
    return random_world(120, 30, 5)


def _one_household(world: World, household_id: str) -> World:
    """What a score call builds: the household's own records plus the server's region tables (the
    same frames, not copies)."""
    out: World = {}
    for name, frame in world.items():
        if name in REGION_TABLES or "household_id" not in frame:
            out[name] = frame
        else:
            out[name] = frame[frame["household_id"] == household_id].reset_index(drop=True)
    return out


def test_a_household_alone_gets_its_row_of_the_full_build(world):
    full = features.build_features(world, AS_OF)
    for household_id in full.index[::17]:
        alone = features.build_features(_one_household(world, household_id), AS_OF)
        pd.testing.assert_frame_equal(alone, full.loc[[household_id]], check_exact=False, rtol=1e-12)


def test_another_standards_table_is_not_served_from_what_was_kept(world):
    before = features.build_features(world, AS_OF)
    doubled = dict(world)
    standards = world["standards"].copy()
    standards["monitoring_line"] = standards["monitoring_line"] * 2
    standards["dibao_standard"] = standards["dibao_standard"] * 2
    doubled["standards"] = standards
    after = features.build_features(doubled, AS_OF)
    known = before["income_to_monitoring_line"].notna()
    assert known.sum() > 50
    np.testing.assert_allclose(after.loc[known, "income_to_monitoring_line"],
                               before.loc[known, "income_to_monitoring_line"] / 2)
    np.testing.assert_allclose(after["dibao_standard"].dropna(), before["dibao_standard"].dropna() * 2)


def test_another_disasters_table_is_not_served_from_what_was_kept(world):
    before = features.build_features(world, AS_OF)
    assert before["disaster_exposure_12m"].sum() > 0
    quiet = dict(world)
    quiet["disasters"] = world["disasters"].iloc[0:0].copy()
    after = features.build_features(quiet, AS_OF)
    assert (after["disaster_exposure_12m"] == 0).all()
    assert after["months_since_disaster"].isna().all()


def test_each_as_of_date_gets_its_own_region_intermediates(world):
    encoded = features.encode_world(world)
    dates = [pd.Timestamp("2024-02-01"), pd.Timestamp("2025-05-01"), pd.Timestamp("2024-02-01")]
    built = [features.build_features(encoded, t) for t in dates]
    pd.testing.assert_frame_equal(built[0], built[2])
    assert not built[0]["disaster_exposure_12m"].equals(built[1]["disaster_exposure_12m"])
    fresh = features.build_features(random_world(120, 30, 5), dates[1])  # new frames: nothing kept
    pd.testing.assert_frame_equal(built[1], fresh)
