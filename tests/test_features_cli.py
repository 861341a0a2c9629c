"""``doudi features``: a real world folder in, a Parquet file of cohort features out."""

from __future__ import annotations

import pandas as pd
import pytest
from factories import random_world
from typer.testing import CliRunner

from doudi.cli import app
from doudi.io import write_world
from doudi.labels import cohort
from doudi.validate import load_world
from features import build_features, feature_names

AS_OF = "2024-07-01"


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("world")
    write_world(random_world(40, 24, 5), directory)
    return directory


def test_writes_one_row_per_cohort_household(world_dir, tmp_path):
    out = tmp_path / "features.parquet"
    result = CliRunner().invoke(app, ["features", str(world_dir), "--as-of", AS_OF, "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    world = load_world(world_dir)
    expected_ids = cohort(world, pd.Timestamp(AS_OF))
    assert 0 < len(expected_ids) < 40
    assert list(frame["household_id"]) == list(expected_ids)
    assert list(frame.columns) == ["household_id", "as_of", *feature_names()]
    assert (frame["as_of"] == pd.Timestamp(AS_OF)).all()
    expected = build_features(world, AS_OF, households=expected_ids)
    got = frame.set_index("household_id")[feature_names()]
    # Read back from Parquet, the labels are Arrow-held text; build_features holds them as Python strings.
    pd.testing.assert_frame_equal(got, expected, check_index_type=False, check_dtype=False,
                                  check_column_type=False)
    assert f"{len(expected_ids)} of 40" in result.output


def test_all_households_and_bad_input(world_dir, tmp_path):
    out = tmp_path / "all.parquet"
    result = CliRunner().invoke(app, ["features", str(world_dir), "--as-of", AS_OF, "--out", str(out),
                                      "--all-households"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) == 40
    bad_date = CliRunner().invoke(app, ["features", str(world_dir), "--as-of", "soon", "--out", str(out)])
    assert bad_date.exit_code != 0 and "not a date" in bad_date.output
    missing = CliRunner().invoke(app, ["features", str(tmp_path / "nowhere"), "--as-of", AS_OF,
                                       "--out", str(out)])
    assert missing.exit_code == 1 and "Traceback" not in missing.output
