"""Asset features from the latest household economic check (家庭经济状况核对) known at T.

Households with no asset report known at T get NaN (not zero): no check is not the same as no assets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.common import household_size, per_capita, policy_value, ratio, standards
from features.registry import feature
from features.snapshot import Snapshot


@dataclass(frozen=True)
class AssetReports:
    """Per household: values of the latest report (NaN when none) and deposits of the one before."""

    deposits: np.ndarray
    vehicles: np.ndarray
    registered_business: np.ndarray
    reported: np.ndarray
    previous_deposits: np.ndarray


def asset_reports(snap: Snapshot) -> AssetReports:
    """Latest and previous asset report per household (ordered by report date, then recorded_at)."""

    def compute() -> AssetReports:
        table = snap.table("assets")
        table = table.take(np.lexsort((table["recorded_at"], table["reported_date"], table["_h"])))
        house = table["_h"]
        last = np.append(house[1:] != house[:-1], True) if len(house) else np.zeros(0, dtype=bool)
        # The row before a household's last row is its previous report when it is the same household.
        previous = np.append(last[1:], False) & ~last

        def latest(column: str, rows: np.ndarray = last) -> np.ndarray:
            out = np.full(snap.n, np.nan)
            out[house[rows]] = table[column].astype(np.float64)[rows]
            return out

        reported = np.full(snap.n, np.datetime64("NaT"), dtype="datetime64[ns]")
        reported[house[last]] = table["reported_date"][last]
        return AssetReports(deposits=latest("deposits"), vehicles=latest("vehicles"),
                            registered_business=latest("registered_business"), reported=reported,
                            previous_deposits=latest("deposits", previous))

    return snap.cached("asset_reports", compute)


@feature(name="deposits_pc_to_dibao", group="assets", source=("assets", "members", "standards"),
         window_months=None, unit="months of dibao standard", monotone=-1,
         zh="人均存款相当于{value:.1f}个月的当地低保标准",
         en="Deposits per person equal {value:.1f} months of the local dibao standard",
         label_zh="人均存款", label_en="Deposits per person",
         description="Latest reported deposits / household size / monthly dibao standard.")
def deposits_pc_to_dibao(snap: Snapshot) -> np.ndarray:
    return ratio(per_capita(snap, asset_reports(snap).deposits), standards(snap).dibao_standard)


@feature(name="deposit_drop", group="assets", source=("assets",), window_months=None, unit="ratio",
         monotone=+1, fill=0.0,
         zh="家庭存款比上一次核对时减少了{value:.0%}",
         en="Deposits fell {value:.0%} since the previous check",
         alt_below=0.0,
         zh_alt="家庭存款比上一次核对时增加了{value:.0%}",
         en_alt="Deposits rose {value:.0%} since the previous check",
         label_zh="存款降幅", label_en="Fall in deposits",
         description="1 - latest / previous reported deposits (savings being drawn down); 0 with fewer "
                     "than two reports or no previous deposits.")
def deposit_drop(snap: Snapshot) -> np.ndarray:
    reports = asset_reports(snap)
    previous = reports.previous_deposits
    return np.where(previous > 0, 1.0 - ratio(reports.deposits, previous), 0.0)


@feature(name="vehicles", group="assets", source=("assets",), window_months=None, unit="count",
         monotone=-1,
         zh="家庭拥有机动车{value:.0f}辆",
         en="The household owns {value:.0f} motor vehicles",
         label_zh="机动车数量", label_en="Motor vehicles",
         description="Vehicles in the latest asset report; NaN without a report.")
def vehicles(snap: Snapshot) -> np.ndarray:
    return asset_reports(snap).vehicles


@feature(name="registered_business", group="assets", source=("assets",), window_months=None, unit="0/1",
         monotone=-1,
         zh="家庭成员登记有个体工商户或企业",
         en="A household member has a registered business",
         alt_below=0.5,
         zh_alt="家庭成员没有登记的个体工商户或企业",
         en_alt="No household member has a registered business",
         label_zh="登记经营主体", label_en="Registered business",
         description="From the latest asset report; NaN without a report.")
def registered_business(snap: Snapshot) -> np.ndarray:
    return asset_reports(snap).registered_business


@feature(name="assets_within_dibao_limit", group="assets", source=("assets", "members", "standards"),
         window_months=None, unit="0/1", monotone=+1,
         zh="家庭存款在低保资产限额以内",
         en="Household deposits are within the dibao asset limit",
         alt_below=0.5,
         zh_alt="家庭存款超过低保资产限额",
         en_alt="Household deposits exceed the dibao asset limit",
         label_zh="存款是否在低保限额内", label_en="Deposits within the dibao limit",
         description="1 when latest deposits < deposit_limit_months x dibao standard x household size "
                     "(policy); NaN without a report or a standard.")
def assets_within_dibao_limit(snap: Snapshot) -> np.ndarray:
    limit = policy_value(snap, "deposit_limit_months") * standards(snap).dibao_standard * household_size(snap)
    deposits = asset_reports(snap).deposits
    return np.where(np.isnan(deposits) | np.isnan(limit), np.nan, (deposits < limit).astype(np.float64))


@feature(name="assets_check_age_months", group="assets", source=("assets",), window_months=None,
         unit="months", monotone=0,
         zh="最近一次家庭经济状况核对是{value:.0f}个月前",
         en="The latest household economic check was {value:.0f} months ago",
         label_zh="距上次经济状况核对月数", label_en="Months since the last economic check",
         description="Months between the latest asset report and T; NaN without a report.")
def assets_check_age_months(snap: Snapshot) -> np.ndarray:
    reported = asset_reports(snap).reported
    return np.where(np.isnat(reported), np.nan, snap.months_before(reported))
