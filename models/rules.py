"""The rule baseline: today's official triggers as a scorer with the model interface."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from doudi.policy import PolicyConfig, load_policy
from models.triggers import evaluate_triggers


class RuleBaseline:
    """Ranks households by how many official triggers fire, then by how severe they are.

    ``score`` = number of fired ranking triggers + mean severity of those triggers (in [0, 1)), so a
    household with more triggers always ranks above one with fewer, and equal counts are ordered by how
    far past the thresholds they are. ``fit`` only learns the map from score to probability (isotonic on
    the training labels) so Brier and ECE can be reported; it never changes the ranking.

    Args:
        policy: thresholds (the packaged policy when None).
    """

    def __init__(self, policy: PolicyConfig | None = None):
        self.policy = policy

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> RuleBaseline:
        """Learn the score -> probability map on training rows; returns self."""
        self.policy_ = self.policy or load_policy()
        self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        self.calibrator_.fit(self.score(X), np.asarray(y, dtype=np.float64))
        return self

    def triggers(self, X: pd.DataFrame) -> pd.DataFrame:
        """The fired triggers and severity per row (see :func:`models.triggers.evaluate_triggers`)."""
        return evaluate_triggers(X, self.policy_ if hasattr(self, "policy_") else self.policy)

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """Ranking score: fired triggers + severity."""
        fired = self.triggers(X)
        return (fired["n_fired"] + fired["severity"]).to_numpy(dtype=np.float64)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of falling into hardship within the horizon (1-d, positive class)."""
        if not hasattr(self, "calibrator_"):
            raise RuntimeError("RuleBaseline is not fitted: call fit first")
        return self.calibrator_.predict(self.score(X))
