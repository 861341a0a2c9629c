import pytest
from pydantic import ValidationError

from doudi.policy import PolicyConfig, load_policy
from doudi.settings import Settings, disable_telemetry


def test_default_policy_has_the_published_ratios():
    rules = load_policy().for_region("530102001001")
    assert rules.edge_multiplier == 1.5
    assert rules.tekun_multiplier == 1.3
    assert rules.tekun_minor_age == 18


def test_longest_prefix_override_wins_and_is_validated():
    base = load_policy().defaults.model_dump()
    config = PolicyConfig.model_validate(
        {"defaults": base, "overrides": {"53": {"edge_multiplier": 2.0}, "530102": {"edge_multiplier": 1.8}}}
    )
    assert config.for_region("530102001001").edge_multiplier == 1.8
    assert config.for_region("530103001001").edge_multiplier == 2.0
    assert config.for_region("110101001001").edge_multiplier == 1.5
    with pytest.raises(ValidationError):
        PolicyConfig.model_validate({"defaults": base, "overrides": {"53": {"edge_multiplier": "lots"}}})
    unknown = PolicyConfig.model_validate({"defaults": base, "overrides": {"53": {"edge_multiplyer": 2}}})
    with pytest.raises(ValidationError):
        unknown.for_region("530102001001")


def test_policy_rejects_unknown_keys(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("defaults: {edge_multiplier: 1.5, surprise: 1}\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        load_policy(path)


def test_settings_defaults_and_telemetry(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DO_NOT_TRACK", raising=False)
    monkeypatch.setenv("DOUDI_DATA_DIR", str(tmp_path))
    settings = Settings()
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / 'doudi.db'}"
    assert settings.resolved_tracking_uri().startswith("sqlite:///")
    disable_telemetry()
    import os

    assert os.environ["DO_NOT_TRACK"] == "true"
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
