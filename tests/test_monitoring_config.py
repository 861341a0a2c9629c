"""The monitoring config: the packaged YAML loads, unknown keys and bad values are refused with the field
named, and the hash changes with any setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from monitoring.config import ATTRIBUTES, MonitoringConfig, load_config


def test_packaged_config_loads_with_fixed_methods():
    config = load_config()
    assert config.drift.numeric_method == "wasserstein" and config.drift.categorical_method == "jensenshannon"
    assert config.drift.score_method == "psi"
    assert config.fairness.band == (0.8, 1.25) and config.fairness.flag_metrics == ("fnr",)
    assert config.fairness.attributes == ATTRIBUTES
    assert config.performance.k_values == (0.01, 0.05, 0.10)
    assert config == MonitoringConfig()  # the YAML states the documented defaults


@pytest.mark.parametrize(("text", "field"), [
    ("drift:\n  numeric_methd: psi\n", "numeric_methd"),
    ("drift:\n  numeric_method: guess\n", "numeric_method"),
    ("drift:\n  drifted_share: 1.5\n", "drifted_share"),
    ("fairness:\n  band: [1.1, 1.25]\n", "band"),
    ("fairness:\n  attributes: [county_code, religion]\n", "religion"),
    ("fairness:\n  flag_metrics: [accuracy]\n", "accuracy"),
    ("performance:\n  k_values: [5]\n", "k_values"),
    ("performance:\n  sources: [cron]\n", "sources"),
    ("alerts: {}\n", "alerts"),
])
def test_bad_configs_are_refused_naming_the_field(tmp_path: Path, text: str, field: str):
    path = tmp_path / "monitoring.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError, match=field):
        load_config(path)


def test_hash_follows_the_settings(tmp_path: Path):
    path = tmp_path / "monitoring.yaml"
    path.write_text("drift:\n  numeric_threshold: 0.2\n", encoding="utf-8")
    assert load_config(path).config_hash() != load_config().config_hash()
    assert load_config().config_hash() == MonitoringConfig().config_hash()
    with pytest.raises(ValidationError):
        load_config().drift.seed = 3  # frozen: a report's config cannot change after it is read
