"""The relapse-risk model: config, datasets, rule / logistic / LightGBM models, evaluation, training.

Public names are imported lazily, so ``import models`` stays cheap and a registered pyfunc model (which
ships this package's source) loads without importing training-only dependencies.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "TrainConfig": "models.config",
    "load_config": "models.config",
    "RiskModel": "models.risk_model",
    "RuleBaseline": "models.rules",
    "LogisticBaseline": "models.logistic",
    "TRIGGERS": "models.triggers",
    "evaluate_triggers": "models.triggers",
    "build_splits": "models.dataset",
    "promote": "models.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
