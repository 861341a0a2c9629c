"""Disaster features: exposure of the household's area, and the household's assessed losses.

A disaster's region code may stand for a whole area: trailing zeros make it a township (9 digits),
county (6), city (4) or province (2). A household is exposed when the code is its village or an area
containing it. Exposure is computed once per village, then mapped to households.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.common import capped_share, villages
from features.income import household_income_annual
from features.registry import feature
from features.snapshot import Columns, Snapshot, select_rows

AREA_PREFIXES = (2, 4, 6, 9, 12)
SHARE_CAP = 10.0


def _exposure(snap: Snapshot) -> dict[str, np.ndarray]:
    """Per household: disasters hitting its area in the last 12 months, their worst severity, and the
    start of the latest disaster known at T (keys count_12m, severity_12m, last_start)."""

    def compute() -> dict[str, np.ndarray]:
        codes, distinct = villages(snap)
        # A missing village code reads as ""; code -1 takes the trailing "" (added only when needed).
        places = [*distinct, ""] if (codes < 0).any() else list(distinct)
        # Exposure depends on the village and T only: villages already seen at this T (by an earlier
        # call of a server, say) are looked up, the others computed together and remembered.
        known = snap.regional("disaster_exposure_by_village", ("disasters",), dict)
        new = [v for v in dict.fromkeys(places) if v not in known]
        if new:
            known.update(_village_exposure(snap, pd.Series(new, dtype="string")))
        rows = [known[v] for v in places]
        return {
            "count_12m": np.array([r[0] for r in rows], dtype=np.float64)[codes],
            "severity_12m": np.array([r[1] for r in rows], dtype=np.float64)[codes],
            "last_start": np.array([r[2] for r in rows], dtype="datetime64[ns]")[codes],
        }

    return snap.cached("disaster_exposure", compute)


def _village_exposure(snap: Snapshot, villages: pd.Series) -> dict[str, tuple[float, float, np.datetime64]]:
    """Village code -> (disasters in 12 months, worst severity in 12 months, latest start known)."""
    disasters = snap.table("disasters")
    disasters = pd.DataFrame({
        "region_code": pd.Series(disasters["region_code"], dtype="string"),
        "severity": disasters["severity"].astype(np.float64),
        "start": disasters["start_date"],
        "row": np.arange(len(disasters)),
    })
    keys = [pd.DataFrame({"region_code": villages.str.slice(0, p) + "0" * (12 - p),
                          "village": np.arange(len(villages))}) for p in AREA_PREFIXES]
    hits = (pd.concat(keys, ignore_index=True).merge(disasters, on="region_code")
            .drop_duplicates(["village", "row"]))
    recent = hits["start"].to_numpy() >= snap.months_ago(12)
    place = hits["village"].to_numpy()
    count = np.bincount(place[recent], minlength=len(villages)).astype(np.float64)
    severity = np.zeros(len(villages))
    np.fmax.at(severity, place[recent], hits["severity"].to_numpy()[recent])
    last = np.full(len(villages), np.datetime64("NaT"), dtype="datetime64[ns]")
    if len(hits):
        latest = hits.groupby("village")["start"].max()
        last[latest.index.to_numpy()] = latest.to_numpy("datetime64[ns]")
    return {str(v): (count[i], severity[i], last[i]) for i, v in enumerate(villages)}


def _losses(snap: Snapshot) -> Columns:
    table = snap.table("disaster_losses")
    return select_rows(table, table["assessed_date"] >= snap.months_ago(12))


@feature(name="disaster_exposure_12m", group="disaster", source=("disasters", "households"),
         window_months=12, unit="count", monotone=+1, fill=0.0,
         zh="近12个月所在村、乡镇或县遭受自然灾害{value:.0f}次",
         en="The household's village, township or county was hit by {value:.0f} natural disasters in "
            "the last 12 months",
         label_zh="所在地受灾次数", label_en="Disasters in the area",
         description="Disasters starting in the 12 months before T whose area contains the village.")
def disaster_exposure_12m(snap: Snapshot) -> np.ndarray:
    return _exposure(snap)["count_12m"]


@feature(name="disaster_max_severity_12m", group="disaster", source=("disasters", "households"),
         window_months=12, unit="level 0-4", monotone=+1, fill=0.0,
         zh="近12个月所在地最严重的一次自然灾害为{value:.0f}级（1级较轻，4级特别严重）",
         en="The worst disaster in the area in the last 12 months was level {value:.0f} (1 light to 4 "
            "catastrophic)",
         alt_below=0.5,
         zh_alt="近12个月所在地没有自然灾害记录",
         en_alt="No natural disaster in the area in the last 12 months",
         label_zh="所在地灾害等级", label_en="Disaster severity in the area",
         description="Highest severity (1-4) of disasters hitting the area in the 12 months before T; "
                     "0 when none.")
def disaster_max_severity_12m(snap: Snapshot) -> np.ndarray:
    return _exposure(snap)["severity_12m"]


@feature(name="months_since_disaster", missing_is_gap=False,
         group="disaster", source=("disasters", "households"),
         window_months=None, unit="months", monotone=-1,
         zh="所在地上一次自然灾害发生在{value:.0f}个月前",
         en="The last natural disaster in the area began {value:.0f} months ago",
         label_zh="距上次所在地受灾月数", label_en="Months since a disaster in the area",
         description="Months between the start of the latest disaster hitting the area and T; NaN when "
                     "none is known.")
def months_since_disaster(snap: Snapshot) -> np.ndarray:
    last = _exposure(snap)["last_start"]
    return np.where(np.isnat(last), np.nan, snap.months_before(last))


@feature(name="disaster_loss_12m", group="disaster", source=("disaster_losses",), window_months=12,
         unit="yuan", monotone=+1, fill=0.0,
         zh="近12个月家庭因灾损失经核定共{value:,.0f}元",
         en="Assessed disaster losses of the household in the last 12 months: {value:,.0f} yuan",
         label_zh="近12个月因灾损失", label_en="Disaster losses (12 months)",
         description="Sum of assessed household losses (amount) assessed in the 12 months before T.")
def disaster_loss_12m(snap: Snapshot) -> np.ndarray:
    losses = _losses(snap)
    return snap.per_household(losses["_h"], losses["amount"].astype(np.float64))


@feature(name="housing_damage_12m", group="disaster", source=("disaster_losses",), window_months=12,
         unit="level 0-3", monotone=+1, fill=0.0,
         zh="近12个月房屋因灾受损，程度为{value:.0f}级（1轻微，2严重，3倒塌）",
         en="The house was damaged by a disaster in the last 12 months, level {value:.0f} (1 minor, "
            "2 severe, 3 collapsed)",
         alt_below=0.5,
         zh_alt="近12个月房屋没有因灾受损",
         en_alt="The house was not damaged by a disaster in the last 12 months",
         label_zh="房屋受损程度", label_en="Housing damage",
         description="Worst housing damage assessed in the 12 months before T: 0 none, 1 minor, "
                     "2 severe, 3 collapsed (contract order).")
def housing_damage_12m(snap: Snapshot) -> np.ndarray:
    losses = _losses(snap)
    # Codes are positions in the contract's HOUSING_DAMAGE, ordered none < minor < severe < collapsed.
    damage = losses["housing_damage"].astype(np.float64)
    known = damage >= 0
    return snap.per_household_max(losses["_h"][known], damage[known], empty=0.0)


@feature(name="disaster_loss_to_income", group="disaster", source=("disaster_losses", "income"),
         window_months=12, unit="ratio", monotone=+1,
         zh="近12个月因灾损失相当于家庭年收入的{value:.0%}",
         en="Disaster losses over 12 months equal {value:.0%} of household income",
         label_zh="因灾损失占家庭收入比例", label_en="Disaster losses relative to income",
         description="disaster_loss_12m / household income of the last 12 known months (annualised), "
                     "capped at 10; NaN when income is unknown.")
def disaster_loss_to_income(snap: Snapshot) -> np.ndarray:
    return capped_share(disaster_loss_12m(snap), household_income_annual(snap), SHARE_CAP)
