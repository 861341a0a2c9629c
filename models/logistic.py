"""The linear baseline: scaled logistic regression on the same features as the LightGBM model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


class LogisticBaseline:
    """Logistic regression on winsorised, standardised numeric features and one-hot categoricals.

    Numeric features: missing values are imputed with the training median and flagged by a 0/1 column;
    values are clipped to the training ``[q, 1 - q]`` quantiles (money amounts are heavy-tailed) and
    standardised. Categorical features: one column per training category (unseen and missing -> all zero).

    Args:
        features: feature columns, in order.
        categorical: which of them are categorical.
        C: inverse L2 regularisation strength.
        max_iter: solver iterations.
        clip_quantile: winsorisation quantile q.
    """

    def __init__(
        self,
        features: Sequence[str],
        categorical: Sequence[str] = (),
        *,
        C: float = 1.0,
        max_iter: int = 2000,
        clip_quantile: float = 0.005,
    ):
        self.features = list(features)
        self.categorical = list(categorical)
        self.C = C
        self.max_iter = max_iter
        self.clip_quantile = clip_quantile

    @property
    def numeric(self) -> list[str]:
        return [f for f in self.features if f not in set(self.categorical)]

    def fit(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> LogisticBaseline:
        """Learn the preprocessing and the coefficients on training rows; returns self."""
        numeric = X[self.numeric].astype("float64")
        self.medians_ = numeric.median().fillna(0.0)
        self.lower_ = numeric.quantile(self.clip_quantile).fillna(0.0)
        self.upper_ = numeric.quantile(1 - self.clip_quantile).fillna(0.0)
        self.flagged_ = [c for c in self.numeric if numeric[c].isna().any()]
        self.categories_ = {
            c: sorted(X[c].dropna().astype("string").unique().tolist()) for c in self.categorical
        }
        filled = numeric.fillna(self.medians_).clip(self.lower_, self.upper_, axis=1)
        self.means_ = filled.mean()
        self.scales_ = filled.std(ddof=0).replace(0.0, 1.0).fillna(1.0)
        # Newton-Cholesky: a few exact Newton steps on ~100 standardised columns; 10x faster than lbfgs
        # on a million rows, same optimum.
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter, solver="newton-cholesky")
        self.model_.fit(self._design(X), np.asarray(y, dtype=np.int64))
        return self

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        numeric = X[self.numeric].astype("float64")
        clipped = numeric.fillna(self.medians_).clip(self.lower_, self.upper_, axis=1)
        scaled = (clipped - self.means_) / self.scales_
        blocks = [scaled.to_numpy(dtype=np.float64), numeric[self.flagged_].isna().to_numpy(dtype=np.float64)]
        for column, categories in self.categories_.items():
            codes = pd.Categorical(X[column].astype("string"), categories=categories).codes
            one_hot = np.zeros((len(X), len(categories)))
            seen = codes >= 0
            one_hot[np.flatnonzero(seen), codes[seen]] = 1.0
            blocks.append(one_hot)
        return np.hstack(blocks)

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """Ranking score: the linear predictor (log-odds)."""
        return self.model_.decision_function(self._design(X))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Probability of falling into hardship within the horizon (1-d, positive class)."""
        return self.model_.predict_proba(self._design(X))[:, 1]
