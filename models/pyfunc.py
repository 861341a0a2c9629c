"""MLflow pyfunc wrapper around a saved :class:`models.risk_model.RiskModel` directory.

For interoperability (``mlflow.pyfunc.load_model("models:/doudi-relapse-risk@champion")``); the serving
hot path loads the same directory natively with ``RiskModel.load`` (``artifacts/risk_model`` of the
registered model), which skips pyfunc's per-call overhead.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ColSpec, Schema

from doudi.arrowtext import text_array
from doudi.frames import frame_of
from models.risk_model import RiskModel

ARTIFACT_KEY = "risk_model"
OUTPUT_COLUMNS = ("risk", "raw_score", "tier")
_OUTPUT_LABELS = pd.Index(OUTPUT_COLUMNS)


class RiskModelPyfunc(mlflow.pyfunc.PythonModel):
    """Scores a feature frame: ``risk`` (calibrated probability), ``raw_score`` (log-odds), ``tier``."""

    def load_context(self, context: Any) -> None:
        self.model = RiskModel.load(context.artifacts[ARTIFACT_KEY])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        return score_frame(self.model, model_input)


def score_frame(
    model: RiskModel, features: pd.DataFrame, *, matrix: np.ndarray | None = None
) -> pd.DataFrame:
    """The pyfunc output for a feature frame, computed natively (same numbers as the registered model).

    Args:
        model: the risk model.
        features: the rows to score (the model's features; other columns are ignored).
        matrix: ``model.matrix(features)`` when already built (shared with the explanation).
    """
    margin = model.raw_score(features, matrix=matrix)
    risk = model.probability_from_margin(margin)
    # Typed columns, the tier text built by Arrow in the dtype pandas gives text, labels built once:
    # inferring the labels' and the tier's dtypes (or pandas checking each string again) costs more than
    # the model for one row.
    tier = text_array(model.tier(risk))
    return frame_of([risk, margin, tier], features.index, _OUTPUT_LABELS)


def signature(model: RiskModel) -> ModelSignature:
    """Input: each feature (categoricals as strings, numbers as doubles, all optional); output columns."""
    inputs = Schema([
        ColSpec("string" if name in model.categorical else "double", name, required=False)
        for name in model.features
    ])
    outputs = Schema([ColSpec("double", "risk"), ColSpec("double", "raw_score"), ColSpec("string", "tier")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_frame(model: RiskModel, features: pd.DataFrame) -> pd.DataFrame:
    """The features in the signature's types: doubles, categoricals as Python strings (None if missing)."""
    out = {}
    for name in model.features:
        column = features[name]
        if name in model.categorical:
            values = column.astype("string").to_numpy(dtype=object, na_value=None)
            out[name] = pd.Series(values, index=features.index, dtype=object)
        else:
            out[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(out, index=features.index)
