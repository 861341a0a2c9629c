"""What-if worlds for drift checks: a flood year and a broken income feed, applied to any contract world.

Each scenario returns a new world (the input is not changed) that still follows the data contract, so
the same loaders, feature builders and drift report run on it as on real data. They are the cases a
monitoring report must catch: the population really changes (a flood) or the data stops telling the
truth (a department's feed breaks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from doudi.contract import INCOME_SOURCES
from doudi.io import World

FeedFault = Literal["missing", "zero"]


def _month_start(month: str) -> pd.Timestamp:
    try:
        return pd.Period(month, freq="M").to_timestamp()
    except ValueError:
        raise ValueError(f"{month!r} is not a month (YYYY-MM)") from None


def _counties(world: World, county_codes: Sequence[str] | None) -> list[str]:
    known = sorted(world["households"]["village_code"].astype(str).str.slice(0, 6).unique())
    if county_codes is None:
        return known
    unknown = sorted(set(county_codes) - set(known))
    if unknown:
        raise ValueError(f"no households in counties {unknown}; the world has {known}")
    return list(county_codes)


def flood_year(
    world: World,
    *,
    start_month: str,
    months: int = 12,
    county_codes: Sequence[str] | None = None,
    hit_share: float = 0.7,
    farm_loss: float = 0.8,
    seed: int = 0,
) -> World:
    """A catastrophic flood at ``start_month`` in each given county, and a year of lost harvests.

    Adds one county-wide flood (severity 4) per county, assessed losses (crops and houses) for a seeded
    ``hit_share`` of its households, and cuts their farming income by ``farm_loss`` for ``months``
    months from the flood on. Records become known with realistic lags (the flood in days, losses
    within weeks; the income table keeps its own ``recorded_at``).

    Args:
        world: a contract world.
        start_month: month of the flood, ``YYYY-MM``.
        months: how long farming income stays low.
        county_codes: flooded counties (default: every county of the world).
        hit_share: share of each flooded county's households with an assessed loss.
        farm_loss: share of farming income lost by those households.
        seed: seed of the draws.
    """
    if not 0 < hit_share <= 1 or not 0 <= farm_loss <= 1 or months < 1:
        raise ValueError("hit_share must be in (0, 1], farm_loss in [0, 1] and months at least 1")
    rng = np.random.default_rng(seed)
    start = _month_start(start_month)
    counties = _counties(world, county_codes)
    out = dict(world)

    flood_day = start + pd.Timedelta(days=9)
    disaster_ids = [f"SCN-FLOOD-{start:%Y%m}-{code}" for code in counties]
    disasters = pd.DataFrame({
        "disaster_id": pd.array(disaster_ids, dtype="string"),
        "region_code": pd.array([f"{code}000000" for code in counties], dtype="string"),
        "disaster_type": pd.array(["flood"] * len(counties), dtype="string"),
        "start_date": flood_day,
        "end_date": flood_day + pd.Timedelta(days=12),
        "severity": np.full(len(counties), 4, dtype=np.int64),
        "recorded_at": flood_day + pd.Timedelta(days=3),
    })
    out["disasters"] = _append(world["disasters"], disasters)

    homes = world["households"][["household_id", "village_code"]].copy()
    homes["county"] = homes["village_code"].astype(str).str.slice(0, 6)
    homes = homes[homes["county"].isin(counties) & (rng.random(len(homes)) < hit_share)]
    n = len(homes)
    damage = rng.choice(np.array(["none", "minor", "severe", "collapsed"]), n, p=[0.3, 0.35, 0.22, 0.13])
    house_value = pd.Series(damage).map({"none": 0.0, "minor": 4000.0, "severe": 25000.0,
                                         "collapsed": 80000.0}).to_numpy() * rng.uniform(0.6, 1.4, n)
    crop = np.round(rng.uniform(2000, 12000, n), -1)
    assessed = flood_day + pd.to_timedelta(rng.integers(14, 40, n), unit="D")
    losses = pd.DataFrame({
        "loss_id": pd.array([f"SCN-LOSS-{start:%Y%m}-{i:07d}" for i in range(n)], dtype="string"),
        "disaster_id": pd.array("SCN-FLOOD-" + f"{start:%Y%m}-" + homes["county"].to_numpy(dtype=object),
                                dtype="string"),
        "household_id": pd.array(homes["household_id"].to_numpy(dtype=object), dtype="string"),
        "assessed_date": assessed,
        "crop_loss": crop,
        "housing_damage": pd.array(damage, dtype="string"),
        "amount": np.round(crop + house_value, -1),
        "recorded_at": assessed + pd.to_timedelta(rng.integers(3, 15, n), unit="D"),
    })
    out["disaster_losses"] = _append(world["disaster_losses"], losses)

    income = world["income"]
    month = income["month"].astype(str)
    last = (start.to_period("M") + months - 1).strftime("%Y-%m")
    cut = (income["source"].astype(str) == "farming").to_numpy() \
        & income["household_id"].isin(homes["household_id"]).to_numpy() \
        & (month >= start.strftime("%Y-%m")).to_numpy() & (month <= last).to_numpy()
    amount = income["amount"].to_numpy(dtype=np.float64).copy()
    amount[cut] = np.round(amount[cut] * (1 - farm_loss), 2)
    out["income"] = income.assign(amount=amount)
    return out


def broken_income_feed(
    world: World,
    *,
    from_month: str,
    sources: Sequence[str] | None = ("wage",),
    fault: FeedFault = "missing",
    county_codes: Sequence[str] | None = None,
) -> World:
    """A department's income feed breaks from ``from_month`` on.

    Args:
        world: a contract world.
        from_month: first broken month, ``YYYY-MM``.
        sources: income sources of the broken feed (None: every source).
        fault: ``missing`` (the feed stops: no rows arrive) or ``zero`` (rows arrive with amount 0).
        county_codes: counties whose feed breaks (default: every county).
    """
    sources = tuple(INCOME_SOURCES if sources is None else sources)
    unknown = sorted(set(sources) - set(INCOME_SOURCES))
    if unknown:
        raise ValueError(f"unknown income sources {unknown}; the contract has {', '.join(INCOME_SOURCES)}")
    if fault not in ("missing", "zero"):
        raise ValueError(f"fault must be 'missing' or 'zero', not {fault!r}")
    first = _month_start(from_month).strftime("%Y-%m")
    counties = _counties(world, county_codes)
    income = world["income"]
    villages = world["households"].set_index("household_id")["village_code"].astype(str)
    county = income["household_id"].map(villages).str.slice(0, 6)
    broken = (income["month"].astype(str) >= first) & income["source"].astype(str).isin(sources) \
        & county.isin(counties)
    out = dict(world)
    if fault == "missing":
        out["income"] = income[~broken.to_numpy()].reset_index(drop=True)
    else:
        out["income"] = income.assign(amount=income["amount"].where(~broken, 0.0))
    return out


def _append(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` appended to a contract table, in its columns and dtypes."""
    if len(frame) == 0:
        return rows[list(frame.columns)] if len(frame.columns) else rows
    return pd.concat([frame, rows[list(frame.columns)].astype(frame.dtypes.to_dict())], ignore_index=True)
