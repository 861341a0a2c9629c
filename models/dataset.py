"""Training data: monthly snapshots of the cohort, split by date (rolling origin), never by row.

A snapshot at as-of T holds, for each household in ``doudi.labels.cohort(world, T)``, every registered
feature from ``features.build_features`` (records known before T) and, when labelled, the label over
(T, T + H] from ``doudi.labels.build_labels``. Columns: ``as_of``, ``household_id``, ``county_code``,
the features, then ``label``, ``event_month``, ``reason``.

Splits (see ``models/default.yaml`` for the default layout): train, validation (early stopping),
calibration (calibrator and tiers) and test (metrics) at the config's as-of dates, plus ``lead``: the
unlabelled monthly snapshots from the first test as-of on, at which the lists are drawn for lead time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from doudi.io import World
from models.config import TrainConfig

LABEL_COLUMNS = ("label", "event_month", "reason")
SPLITS = ("train", "validation", "calibration", "test")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class FeatureInfo:
    """The model's feature list with what the registry declares about each feature."""

    names: tuple[str, ...]
    categorical: tuple[str, ...]
    monotone: dict[str, int]
    registry_version: str


def feature_info(names: Sequence[str] | None = None) -> FeatureInfo:
    """Look the features up in the registry (all registered features, in order, when ``names`` is None).

    Raises:
        ValueError: a name is not registered.
    """
    from features import REGISTRY, REGISTRY_VERSION, feature_names

    names = tuple(names) if names is not None else tuple(feature_names())
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ValueError(f"features not in the registry: {', '.join(unknown)}")
    categorical = tuple(n for n in names if REGISTRY[n].kind == "categorical")
    monotone = {n: 0 if n in categorical else int(REGISTRY[n].monotone) for n in names}
    return FeatureInfo(names, categorical, monotone, str(REGISTRY_VERSION))


def snapshot(
    world: World, as_of: pd.Timestamp, *, horizon_months: int, labelled: bool = True
) -> pd.DataFrame:
    """Features (and labels) of the cohort at one as-of date, one row per household."""
    from doudi.labels import build_labels, cohort
    from features import build_features

    as_of = pd.Timestamp(as_of)
    households = cohort(world, as_of)
    frame = build_features(world, as_of, households=households)
    if "county_code" not in frame:
        villages = world["households"].set_index("household_id")["village_code"].astype("string")
        frame.insert(0, "county_code", villages.reindex(frame.index).str.slice(0, 6))
    if labelled:
        labels = build_labels(world, as_of, horizon_months=horizon_months)
        missing = frame.index.difference(labels.index)
        if len(missing):
            raise ValueError(
                f"build_labels at {as_of.date()} has no label for {len(missing)} cohort household(s), "
                f"e.g. {list(missing[:3])}"
            )
        labels = labels.reindex(frame.index)
        frame["label"] = labels["label"].astype("int64").to_numpy()
        frame["event_month"] = pd.array(labels["event_month"].astype("string").to_numpy(), dtype="string")
        frame["reason"] = pd.array(labels["reason"].astype("string").to_numpy(), dtype="string")
    frame = frame.rename_axis("household_id").reset_index()
    frame["household_id"] = frame["household_id"].astype("string")
    frame.insert(0, "as_of", np.full(len(frame), as_of.to_datetime64(), dtype="datetime64[ns]"))
    return frame


def build_snapshots(
    world: World,
    dates: Sequence[pd.Timestamp],
    *,
    horizon_months: int,
    labelled: bool = True,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Stack snapshots at each date (see :func:`snapshot`)."""
    frames = []
    for as_of in dates:
        frames.append(snapshot(world, as_of, horizon_months=horizon_months, labelled=labelled))
        if progress is not None:
            progress(f"snapshot {pd.Timestamp(as_of).date()}")
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Splits:
    """Labelled snapshots per split, and the unlabelled monthly lead-time snapshots."""

    train: pd.DataFrame
    validation: pd.DataFrame
    calibration: pd.DataFrame
    test: pd.DataFrame
    lead: pd.DataFrame
    horizon_months: int

    def frame(self, name: str) -> pd.DataFrame:
        return getattr(self, name)


def snapshot_count(config: TrainConfig) -> int:
    """How many snapshots :func:`build_splits` builds (for progress bars)."""
    labelled = {d for name in SPLITS for d in getattr(config, name).as_of_dates()}
    return len(labelled) + len(set(config.lead_time_dates()) - labelled)


def build_splits(world: World, config: TrainConfig, *, progress: Progress | None = None) -> Splits:
    """Build every snapshot the config asks for, each date once."""
    horizon = config.horizon_months
    built: dict[pd.Timestamp, pd.DataFrame] = {}

    def get(dates: Sequence[pd.Timestamp], *, labelled: bool) -> pd.DataFrame:
        for as_of in dates:
            if as_of not in built:
                built[as_of] = snapshot(world, as_of, horizon_months=horizon, labelled=labelled)
                if progress is not None:
                    progress(f"snapshot {as_of.date()}")
        return pd.concat([built[d] for d in dates], ignore_index=True)

    labelled = {name: get(getattr(config, name).as_of_dates(), labelled=True) for name in SPLITS}
    lead = get(config.lead_time_dates(), labelled=False).drop(columns=list(LABEL_COLUMNS), errors="ignore")
    splits = Splits(**labelled, lead=lead, horizon_months=horizon)
    check_no_leakage(splits)
    return splits


def label_window_end(as_of: pd.Series | pd.Timestamp, horizon_months: int) -> pd.Series | pd.Timestamp:
    """End of the label window (T, T + H] of an as-of date."""
    return as_of + pd.DateOffset(months=horizon_months)


def check_no_leakage(splits: Splits) -> None:
    """Raise if any training label window ends after the first validation or calibration as-of, or any
    validation/calibration window after the first test as-of (rolling origin)."""
    horizon = splits.horizon_months
    held_out = min(splits.validation["as_of"].min(), splits.calibration["as_of"].min())
    test_start = splits.test["as_of"].min()
    checks = (("train", splits.train, held_out), ("validation", splits.validation, test_start),
              ("calibration", splits.calibration, test_start))
    for name, frame, limit in checks:
        last = frame["as_of"].max()
        if label_window_end(last, horizon) > limit:
            raise ValueError(
                f"{name} snapshot {last.date()} has a label window ending after {limit.date()}: labels leak"
            )


def describe_splits(splits: Splits) -> pd.DataFrame:
    """One row per split: as-of dates, where the label windows end, rows, positives, base rate."""
    rows = []
    for name in (*SPLITS, "lead"):
        frame = splits.frame(name)
        dates = sorted(frame["as_of"].unique())
        labelled = "label" in frame
        rows.append({
            "split": name,
            "as_of_first": pd.Timestamp(dates[0]).strftime("%Y-%m-%d"),
            "as_of_last": pd.Timestamp(dates[-1]).strftime("%Y-%m-%d"),
            "snapshots": len(dates),
            "label_windows_end": (
                label_window_end(pd.Timestamp(dates[-1]), splits.horizon_months).strftime("%Y-%m-%d")
                if labelled else ""
            ),
            "rows": len(frame),
            "households": frame["household_id"].nunique(),
            "positives": int(frame["label"].sum()) if labelled else pd.NA,
            "base_rate": round(float(frame["label"].mean()), 4) if labelled else np.nan,
        })
    return pd.DataFrame(rows).astype({"positives": "Int64"})


def data_fingerprint(world: World) -> str:
    """Order-independent hash of the input tables (name, shape, columns, sum of row hashes)."""
    digest = hashlib.sha256()
    for name in sorted(world):
        frame = world[name]
        columns = sorted(frame.columns)
        rows = pd.util.hash_pandas_object(frame[columns], index=False).to_numpy()
        total = int(rows.sum(dtype="uint64"))  # wraps modulo 2**64: an order-free row checksum
        digest.update(f"{name}|{len(frame)}|{','.join(columns)}|{total}\n".encode())
    return digest.hexdigest()[:16]
