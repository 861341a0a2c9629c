"""The training config: defaults, strictness, leakage checks, hash."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from models.config import TrainConfig, load_config


def _data(**changes: object) -> dict:
    data = load_config().model_dump(mode="json")
    data.update(changes)
    return data


def test_default_config_layout():
    config = load_config()
    assert config.horizon_months == 6
    assert [d.strftime("%Y-%m") for d in config.train.as_of_dates()] == [
        "2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]
    assert config.test.as_of_dates() == [pd.Timestamp("2025-07-01")]
    assert [d.strftime("%Y-%m") for d in config.lead_time_dates()][-1] == "2025-12"
    assert config.k_values == (0.01, 0.05, 0.10)
    assert config.features is None


def test_unknown_keys_are_rejected_at_every_level():
    with pytest.raises(ValidationError, match="extra"):
        TrainConfig.model_validate(_data(horizon=6))
    data = _data()
    data["lightgbm"]["num_leafs"] = 15
    with pytest.raises(ValidationError, match="num_leafs"):
        TrainConfig.model_validate(data)
    data = _data()
    data["train"]["stop"] = "2024-06-01"
    with pytest.raises(ValidationError, match="stop"):
        TrainConfig.model_validate(data)


def test_training_windows_may_not_reach_validation():
    data = _data(train={"start": "2024-01-01", "end": "2024-07-01"})  # window ends 2025-01 > 2024-12
    with pytest.raises(ValidationError, match="leak"):
        TrainConfig.model_validate(data)
    data = _data(horizon_months=7)  # 2024-06 + 7 months = 2025-01 > 2024-12
    with pytest.raises(ValidationError, match="leak"):
        TrainConfig.model_validate(data)


def test_calibration_windows_may_not_reach_test():
    data = _data(calibration={"dates": ["2025-02-01"]})  # window ends 2025-08 > 2025-07
    with pytest.raises(ValidationError, match="calibration label window"):
        TrainConfig.model_validate(data)


def test_boundary_is_allowed():
    # The last training window (2024-06-01, +6 months] ends exactly at the validation as-of.
    config = TrainConfig.model_validate(_data())
    last = config.train.as_of_dates()[-1] + pd.DateOffset(months=config.horizon_months)
    assert last == config.validation.as_of_dates()[0]


def test_period_forms():
    with pytest.raises(ValidationError, match="either"):
        TrainConfig.model_validate(_data(test={"dates": ["2025-07-01"], "start": "2025-07-01",
                                               "end": "2025-08-01"}))
    with pytest.raises(ValidationError, match="first of a month"):
        TrainConfig.model_validate(_data(test={"dates": ["2025-07-15"]}))
    config = TrainConfig.model_validate(_data(train={"start": "2023-07-01", "end": "2024-06-01",
                                                     "step_months": 3}))
    assert [d.strftime("%Y-%m") for d in config.train.as_of_dates()] == [
        "2023-07", "2023-10", "2024-01", "2024-04"]


def test_value_checks():
    with pytest.raises(ValidationError, match="k_values"):
        TrainConfig.model_validate(_data(k_values=[0.05, 5]))
    with pytest.raises(ValidationError, match="red >= orange >= yellow"):
        TrainConfig.model_validate(_data(tiers={"red": 0.2, "orange": 0.3, "yellow": 0.1}))
    with pytest.raises(ValidationError, match="twice"):
        TrainConfig.model_validate(_data(features=["cpi_yoy", "cpi_yoy"]))


def test_hash_is_canonical_and_sensitive(tmp_path: Path):
    config = load_config()
    assert config.config_hash() == load_config().config_hash()
    assert len(config.config_hash()) == 64
    path = tmp_path / "c.yaml"
    data = config.model_dump(mode="json")
    path.write_text(yaml.safe_dump(dict(reversed(list(data.items())))), encoding="utf-8")
    assert load_config(path).config_hash() == config.config_hash()  # key order does not matter
    data["lightgbm"]["num_leaves"] = 15
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert load_config(path).config_hash() != config.config_hash()


def test_flat_params_cover_nested_sections():
    params = load_config().flat_params()
    assert params["lightgbm.num_leaves"] == "31"
    assert params["k_values"] == "0.01,0.05,0.1"
    assert params["train.start"] == "2024-01-01"
    assert all(len(k) <= 250 and len(v) <= 6000 for k, v in params.items())
