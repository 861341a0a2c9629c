"""Assistance history: lifted out of poverty, programme exits, edge-family status, temporary aid.

A programme record is active at T when it started before T and has no end date or ends on/after T.
An end date on/after T is treated exactly like "ongoing", so a recorded future end never leaks.

Lifting out of poverty is certified at year end: a household with ``lifted_out_year`` Y counts as
lifted out from 1 January of Y+1, and months since lifting are counted from then.
"""

from __future__ import annotations

import numpy as np

from doudi.contract import PROGRAMMES
from features.registry import feature
from features.snapshot import Columns, Snapshot, code_in, select_rows

_CODE = {name: PROGRAMMES.index(name) for name in PROGRAMMES}
_MAIN = [_CODE["dibao"], _CODE["tekun"], _CODE["edge"]]


def _records(snap: Snapshot, programmes: list[int]) -> Columns:
    table = snap.table("assistance")
    return select_rows(table, code_in(table["programme"], programmes))


def _lifted_year(snap: Snapshot) -> np.ndarray:
    year = snap.table("households")["lifted_out_year"].astype(np.float64)
    return np.where(year < snap.as_of.year, year, np.nan)


@feature(name="lifted_out", group="assistance", source=("households",), window_months=None, unit="0/1",
         monotone=+1, fill=0.0,
         zh="已脱贫户（曾为建档立卡贫困户）",
         en="A household lifted out of poverty (formerly registered as poor)",
         alt_below=0.5,
         zh_alt="不是已脱贫户",
         en_alt="Not a household lifted out of poverty",
         label_zh="已脱贫户", label_en="Lifted out of poverty",
         description="1 when lifted_out_year is before T's year (lifting is certified at year end).")
def lifted_out(snap: Snapshot) -> np.ndarray:
    return (~np.isnan(_lifted_year(snap))).astype(np.float64)


@feature(name="months_since_lifted", missing_is_gap=False,
         group="assistance", source=("households",), window_months=None,
         unit="months", monotone=-1,
         zh="脱贫已{value:.0f}个月",
         en="Lifted out of poverty {value:.0f} months ago",
         label_zh="脱贫时长", label_en="Months since lifted out of poverty",
         description="Calendar months from 1 January after lifted_out_year to T's month; NaN if not lifted.")
def months_since_lifted(snap: Snapshot) -> np.ndarray:
    return snap.month - (_lifted_year(snap) + 1) * 12


@feature(name="edge_family", group="assistance", source=("assistance",), window_months=None, unit="0/1",
         monotone=+1, fill=0.0,
         zh="目前是低保边缘家庭",
         en="Currently a low-income edge family",
         alt_below=0.5,
         zh_alt="目前不是低保边缘家庭",
         en_alt="Not currently a low-income edge family",
         label_zh="低保边缘家庭", label_en="Edge family",
         description="1 when an edge-family programme record is active at T.")
def edge_family(snap: Snapshot) -> np.ndarray:
    records = _records(snap, [_CODE["edge"]])
    end = records["end_date"]
    active = np.isnat(end) | (end >= snap.as_of.to_datetime64())
    return (snap.per_household(records["_h"][active]) > 0).astype(np.float64)


def _ended(snap: Snapshot, programmes: list[int]) -> Columns:
    records = _records(snap, programmes)
    end = records["end_date"]
    return select_rows(records, ~np.isnat(end) & (end < snap.as_of.to_datetime64()))


@feature(name="months_since_exit", missing_is_gap=False,
         group="assistance", source=("assistance",), window_months=None,
         unit="months", monotone=-1,
         zh="{value:.0f}个月前退出低保、特困供养或低保边缘救助",
         en="Left dibao, extreme-poverty support or edge-family assistance {value:.0f} months ago",
         label_zh="距退出救助月数", label_en="Months since leaving assistance",
         description="Months between the latest end of a dibao, tekun or edge programme (before T) and T; "
                     "NaN when none ended.")
def months_since_exit(snap: Snapshot) -> np.ndarray:
    ended = _ended(snap, _MAIN)
    return snap.per_household_min(ended["_h"], snap.months_before(ended["end_date"]))


@feature(name="past_dibao_or_tekun", group="assistance", source=("assistance",), window_months=None,
         unit="0/1", monotone=+1, fill=0.0,
         zh="曾享受低保或特困供养，现已退出",
         en="Received dibao or extreme-poverty support in the past (now ended)",
         alt_below=0.5,
         zh_alt="没有已退出的低保或特困供养记录",
         en_alt="No ended dibao or extreme-poverty support on record",
         label_zh="曾享受低保或特困", label_en="Past dibao or extreme-poverty support",
         description="1 when a dibao or tekun record ended before T.")
def past_dibao_or_tekun(snap: Snapshot) -> np.ndarray:
    ended = _ended(snap, [_CODE["dibao"], _CODE["tekun"]])
    return (snap.per_household(ended["_h"]) > 0).astype(np.float64)


@feature(name="temporary_aid_12m", group="assistance", source=("assistance",), window_months=12,
         unit="count", monotone=+1, fill=0.0,
         zh="近12个月领取临时救助{value:.0f}次",
         en="Received temporary assistance {value:.0f} times in the last 12 months",
         label_zh="临时救助次数", label_en="Temporary assistance",
         description="Temporary-assistance payments dated in the 12 months before T.")
def temporary_aid_12m(snap: Snapshot) -> np.ndarray:
    records = _records(snap, [_CODE["temporary"]])
    recent = records["start_date"] >= snap.months_ago(12)
    return snap.per_household(records["_h"][recent])
