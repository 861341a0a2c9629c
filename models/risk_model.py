"""The relapse-risk model: monotone-constrained LightGBM, a calibrator on its margin, alert tiers.

Saved as a plain directory that needs only numpy, pandas and lightgbm to load (the serving hot path
loads it natively from the registered MLflow artifact)::

    booster.txt   LightGBM text model, truncated at the best iteration
    model.json    feature list with kinds and training categories, monotone constraints, calibrator,
                  tier thresholds and targets, feature-registry version, parameters
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from doudi.frames import column_arrays, column_values

FORMAT_VERSION = 1
TIERS = ("red", "orange", "yellow")
NO_TIER = "none"
SMALL_BATCH = 1000
"""Below this many rows, predict on one thread: thread start-up costs more than it saves."""
SMALL_CONTRIB_BATCH = 32
"""The same for ``pred_contrib``, ~100x the work per row: a second thread pays off from a few dozen rows
(300 trees x 31 leaves, 2 cores: 1 row 4.1 ms on one thread, 6.3 ms on two; 50 rows 153 ms, 90 ms)."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def tier_thresholds(
    y: np.ndarray | pd.Series, probability: np.ndarray | pd.Series, targets: Mapping[str, float]
) -> dict[str, float | None]:
    """Lowest probability cut per tier whose list still reaches the tier's precision target.

    For each target, the longest list ``{p >= t}`` (cut only between different probabilities) whose
    precision is at least the target; ``None`` when no list reaches it (the tier is never given).
    Higher targets give nested, shorter lists.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(probability, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    ps, hits = p[order], np.cumsum(y[order])
    ends = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])
    precision = hits[ends] / (ends + 1)
    out: dict[str, float | None] = {}
    for name, target in targets.items():
        ok = np.flatnonzero(precision >= target)
        out[name] = float(ps[ends[ok[-1]]]) if len(ok) else None
    return out


class RiskModel:
    """Monotone LightGBM with a calibrated probability and alert tiers.

    Args:
        features: feature columns, in order (the model's input contract).
        categorical: which features are categorical (encoded with the categories seen in training).
        monotone: feature -> +1 (risk never falls as it rises), -1, or 0; categoricals must be 0.
        params: ``lightgbm.train`` parameters.
        num_boost_round: round budget.
        early_stopping_rounds: patience on the validation set.
        calibration: ``platt`` (sigmoid of the margin; keeps the ranking) or ``isotonic``.
        tier_targets: tier -> precision target on the calibration period.
        registry_version: the feature registry version the features came from.
    """

    def __init__(
        self,
        features: Sequence[str],
        categorical: Sequence[str] = (),
        *,
        monotone: Mapping[str, int] | None = None,
        params: Mapping[str, Any] | None = None,
        num_boost_round: int = 600,
        early_stopping_rounds: int = 50,
        calibration: Literal["platt", "isotonic"] = "platt",
        tier_targets: Mapping[str, float] | None = None,
        registry_version: str | None = None,
    ):
        self.features = list(features)
        self.categorical = list(categorical)
        self.monotone = dict(monotone or {})
        self.params = dict(params or {"objective": "binary", "verbosity": -1})
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.tier_targets = dict(tier_targets or {"red": 0.5, "orange": 0.3, "yellow": 0.15})
        self.registry_version = registry_version

    # ----------------------------------------------------------------------------------------- fitting
    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        X_valid: pd.DataFrame | None = None,
        y_valid: pd.Series | np.ndarray | None = None,
        X_calib: pd.DataFrame | None = None,
        y_calib: pd.Series | np.ndarray | None = None,
    ) -> RiskModel:
        """Train the booster (early stopping on the validation rows), then calibrate if given rows.

        Returns:
            self.
        """
        unknown = sorted(set(self.categorical) - set(self.features))
        bad = {f: m for f, m in self.monotone.items() if m not in (-1, 0, 1) or (m and f in self.categorical)}
        if unknown or bad:
            raise ValueError(f"RiskModel: categorical not in features {unknown}; bad monotone values {bad}")
        self.categories_ = {
            c: sorted(X[c].dropna().astype("string").unique().tolist()) for c in self.categorical
        }
        cat_index = [self.features.index(c) for c in self.categorical]
        params = {
            **self.params,
            "monotone_constraints": [int(self.monotone.get(f, 0)) for f in self.features],
        }
        train_set = lgb.Dataset(self.matrix(X), label=np.asarray(y, dtype=np.float64),
                                feature_name=self.features, categorical_feature=cat_index, free_raw_data=True)
        valid_sets, callbacks = [], []
        if X_valid is not None and y_valid is not None:
            valid_sets = [lgb.Dataset(self.matrix(X_valid), label=np.asarray(y_valid, dtype=np.float64),
                                      reference=train_set)]
            callbacks = [lgb.early_stopping(self.early_stopping_rounds, verbose=False)]
        booster = lgb.train(params, train_set, num_boost_round=self.num_boost_round, valid_sets=valid_sets,
                            callbacks=callbacks)
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        # Keep only the trees up to the best iteration: predictions and the saved model agree by construction.
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=self.best_iteration_))
        self.calibrator_: dict[str, Any] = {"method": "identity"}
        self.tiers_: dict[str, float | None] = dict.fromkeys(self.tier_targets)
        if X_calib is not None and y_calib is not None:
            self.calibrate(X_calib, y_calib)
        return self

    def calibrate(self, X: pd.DataFrame, y: pd.Series | np.ndarray) -> RiskModel:
        """Fit the calibrator on the raw margin of these rows and choose the tier thresholds on them."""
        margin = self.raw_score(X)
        y = np.asarray(y, dtype=np.float64)
        if y.min() == y.max():
            raise ValueError("calibration rows hold a single class: cannot calibrate")
        if self.calibration == "platt":
            self.calibrator_ = _fit_platt(margin, y)
        elif self.calibration == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(margin, y)
            self.calibrator_ = {"method": "isotonic", "x": iso.X_thresholds_.tolist(),
                                "y": iso.y_thresholds_.tolist()}
        else:
            raise ValueError(f"unknown calibration {self.calibration!r}: use platt or isotonic")
        self.tiers_ = tier_thresholds(y, self.probability_from_margin(margin), self.tier_targets)
        return self

    # -------------------------------------------------------------------------------------- prediction
    def matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The booster's input for ``X``: the model's features in order, as float64.

        Categoricals become the position of their value among the training categories (NaN when missing
        or unseen). Build it once and pass it as ``matrix=`` to :meth:`raw_score` and
        :meth:`contributions` when scoring and explaining the same rows.

        Raises:
            KeyError: ``X`` lacks a feature column.
        """
        # The arrays behind the columns: a pandas call per column (or one on the whole frame, mixed text
        # and numbers) costs more than a prediction of one row.
        arrays = column_arrays(X, self.features)
        missing = [f for f in self.features if f not in arrays]
        if missing:
            raise KeyError(f"RiskModel: input lacks feature column(s): {', '.join(missing)}")
        positions = self._category_positions()
        out = np.empty((len(self.features), len(X)))  # returned transposed: one feature per row here
        for row, name in enumerate(self.features):
            out[row] = (self._category_codes(arrays[name], positions[name]) if name in positions
                        else column_values(arrays[name], np.float64, np.nan))
        return out.T

    def _category_positions(self) -> dict[str, dict[str, int]]:
        """Per categorical feature, the position of each training category, worked out once per fitted
        (or loaded) set of categories rather than on every call."""
        categories = getattr(self, "categories_", {})
        cached = self.__dict__.get("_positions")
        if cached is None or cached[0] is not categories or cached[1] != self.categorical:
            positions = {name: {value: at for at, value in enumerate(categories.get(name, []))}
                         for name in self.categorical}
            cached = self._positions = (categories, list(self.categorical), positions)
        return cached[2]

    @staticmethod
    def _category_codes(column: np.ndarray | ExtensionArray, positions: dict[str, int]) -> np.ndarray:
        """Position of each value (as a string) among the categories; NaN when missing or not among them.

        ``column`` is the array behind a feature column.
        """
        if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "python":
            values = np.asarray(column, dtype=object).tolist()  # the strings themselves (missing: NA)
        else:
            if not isinstance(column.dtype, pd.StringDtype):
                column = pd.array(column, dtype="string")
            values = column.to_numpy(dtype=object, na_value=None).tolist()
        # A dict look-up per value: a pandas Index or Categorical per call costs more than the look-up
        # itself for a few rows.
        return np.array([positions.get(value, np.nan) if isinstance(value, str) else np.nan
                         for value in values], dtype=np.float64)

    def _checked(self, X: pd.DataFrame, matrix: np.ndarray | None) -> np.ndarray:
        if matrix is None:
            return self.matrix(X)
        if matrix.shape != (len(X), len(self.features)):
            raise ValueError(f"RiskModel: matrix of shape {matrix.shape} for {len(X)} rows and "
                             f"{len(self.features)} features")
        return matrix

    def _threads(self, rows: int, *, small: int = SMALL_BATCH) -> int:
        return 1 if rows < small else int(self.params.get("num_threads", 0))

    def raw_score(self, X: pd.DataFrame, *, matrix: np.ndarray | None = None) -> np.ndarray:
        """The booster's margin (log-odds before calibration).

        Args:
            X: the rows to score.
            matrix: ``self.matrix(X)`` when already built.
        """
        values = self._checked(X, matrix)
        return self.booster_.predict(values, raw_score=True, num_threads=self._threads(len(values)))

    def probability_from_margin(self, margin: np.ndarray) -> np.ndarray:
        """Calibrated probability for raw margins (what ``predict_proba`` returns for the same rows)."""
        method = self.calibrator_["method"]
        if method == "platt":
            return _sigmoid(self.calibrator_["a"] * margin + self.calibrator_["b"])
        if method == "isotonic":
            return np.interp(margin, self.calibrator_["x"], self.calibrator_["y"])
        return _sigmoid(margin)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probability of falling into hardship within the horizon (1-d, positive class)."""
        return self.probability_from_margin(self.raw_score(X))

    def score(self, X: pd.DataFrame) -> np.ndarray:
        """Ranking score: the raw margin (same order as the probability, without isotonic's flat steps)."""
        return self.raw_score(X)

    def tier(self, probability: np.ndarray | pd.Series) -> np.ndarray:
        """Alert tier per probability: ``red``, ``orange``, ``yellow`` or ``none``."""
        p = np.asarray(probability, dtype=np.float64)
        out = np.full(len(p), NO_TIER, dtype=object)
        for name in reversed(TIERS):
            cut = self.tiers_.get(name)
            if cut is not None:
                out[p >= cut] = name
        return out

    def contributions(self, X: pd.DataFrame, *, matrix: np.ndarray | None = None) -> pd.DataFrame:
        """TreeSHAP contributions in log-odds; the last column ``base_value``. Rows sum to ``raw_score``.

        Args:
            X: the rows to explain.
            matrix: ``self.matrix(X)`` when already built.
        """
        values = self._checked(X, matrix)
        threads = self._threads(len(values), small=SMALL_CONTRIB_BATCH)
        contrib = self.booster_.predict(values, pred_contrib=True, num_threads=threads)
        return pd.DataFrame(contrib, index=X.index, columns=self._contribution_columns().copy())

    def _contribution_columns(self) -> pd.Index:
        """``[*features, "base_value"]`` as an Index, built once per feature list: inferring the labels'
        dtype costs more than the frame for one row."""
        key = tuple(self.features)
        cached = self.__dict__.get("_contribution_labels")
        if cached is None or cached[0] != key:
            cached = self._contribution_labels = (key, pd.Index([*key, "base_value"]))
        return cached[1]

    def feature_importance(self, kind: Literal["gain", "split"] = "gain") -> pd.Series:
        """Global importance per feature, largest first."""
        values = self.booster_.feature_importance(importance_type=kind)
        return pd.Series(values, index=self.features, name=kind).sort_values(ascending=False)

    # ------------------------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> Path:
        """Write the model to ``directory`` (created); returns it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(directory / "booster.txt"))
        meta = {
            "format_version": FORMAT_VERSION,
            "features": self.features,
            "categorical": self.categorical,
            "categories": self.categories_,
            "monotone": {f: int(self.monotone.get(f, 0)) for f in self.features},
            "params": self.params,
            "num_boost_round": self.num_boost_round,
            "early_stopping_rounds": self.early_stopping_rounds,
            "best_iteration": self.best_iteration_,
            "calibration": self.calibration,
            "calibrator": self.calibrator_,
            "tier_targets": self.tier_targets,
            "tiers": self.tiers_,
            "registry_version": self.registry_version,
        }
        text = json.dumps(meta, indent=2, ensure_ascii=False)
        (directory / "model.json").write_text(text, encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path) -> RiskModel:
        """Read a model written by :meth:`save`."""
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            found = meta.get("format_version")
            raise ValueError(f"{directory}: model format {found}, expected {FORMAT_VERSION}")
        model = cls(
            meta["features"], meta["categorical"], monotone=meta["monotone"], params=meta["params"],
            num_boost_round=meta["num_boost_round"], early_stopping_rounds=meta["early_stopping_rounds"],
            calibration=meta["calibration"], tier_targets=meta["tier_targets"],
            registry_version=meta["registry_version"],
        )
        model.categories_ = meta["categories"]
        model.best_iteration_ = meta["best_iteration"]
        model.calibrator_ = meta["calibrator"]
        model.tiers_ = meta["tiers"]
        model.booster_ = lgb.Booster(model_file=str(directory / "booster.txt"))
        return model


def _fit_platt(margin: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Platt scaling: p = sigmoid(a * margin + b), by unregularised 1-d logistic regression."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, max_iter=1000).fit(margin.reshape(-1, 1), y.astype(np.int64))
    return {"method": "platt", "a": float(fit.coef_[0, 0]), "b": float(fit.intercept_[0])}
