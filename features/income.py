"""Income features: level against the local lines, drops, volatility and mix.

Months at T. Income of a month arrives in pieces over the following months (each source and member
with its own lag), so only *complete* months count: month ``m`` with ``m <= H``, where the complete
horizon ``H = month(T) - 1 - complete_after_months`` comes from the income table of the data contract
(2: at T in 2025-07, H is 2025-04; see :meth:`features.snapshot.Snapshot.complete_month`). Records of
later months are known but partial (in the synthetic world, at T on the first of a month, about 72 % of
the income of the month before last is recorded) and would look like a fall in income, so the level and
drop windows never read them.

Each household's windows are anchored at its *latest known complete month* L (its latest month up to H
with an income record; H itself unless its data stopped earlier): "last 3 months" is L-2..L and "the 12
months before" is L-14..L-3. ``income_staleness_months`` says how old L is; ``income_months_known_last_3``
counts records of the last 3 calendar months, complete or not (data freshness).

Missing is not zero. Within a household's reported span (its first known month to L) a month with no
income row is a month with zero income (every source reports monthly; no row means nothing earned).
Months before the first known month are unknown: means and sums use only the covered months, and
12-month totals are annualised from the covered months. A household with no income record at all gets
NaN for levels and ratios (and 0 for drops, which need a base to drop from).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from doudi.contract import INCOME_SOURCES, TABLES
from features.common import medical_oop, per_capita, policy_value, ratio, standards
from features.registry import feature
from features.snapshot import Snapshot, select_rows

WINDOW = 15
"""Months kept behind the latest known complete month: 0..2 recent, 3..14 the 12 months before."""
_WAGE = INCOME_SOURCES.index("wage")
_LAG = TABLES["income"].complete_after_months or 0


@dataclass(frozen=True)
class IncomeWindows:
    """Monthly household income by month offset ``k`` behind the latest known complete month (``L - k``).

    Attributes:
        total, wage: (households, WINDOW) income in yuan, all sources / wages only.
        covered: (households, WINDOW) the month lies within the household's reported span.
        by_source_12m: (households, sources) income of the last 12 known complete months by source.
        last: latest known complete month index per household (-1 when none).
        recent_known: how many of the 3 calendar months before T's month have a record (complete or not).
    """

    total: np.ndarray
    wage: np.ndarray
    covered: np.ndarray
    by_source_12m: np.ndarray
    last: np.ndarray
    recent_known: np.ndarray


def income_windows(snap: Snapshot) -> IncomeWindows:
    """The household-by-month income matrix every income feature reads (computed once per snapshot)."""

    def compute() -> IncomeWindows:
        table = snap.table("income")
        month = table["month"]
        n = snap.n
        # Freshness reads every record of the last 3 calendar months, the windows only complete months.
        recent = month - (snap.month - 3)
        cell = np.where((recent >= 0) & (recent < 3), table["_h"] * 3 + recent, n * 3)
        seen = np.bincount(cell, minlength=n * 3 + 1)[:-1].reshape(n, 3)
        recent_known = (seen > 0).sum(axis=1).astype(np.float64)
        table = select_rows(table, month <= snap.complete_month("income"))
        month = table["month"]
        house = table["_h"]
        amount = table["amount"].astype(np.float64)
        source = table["source"]
        last = np.full(n, -1, dtype=np.int64)
        np.maximum.at(last, house, month)
        first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, house, month)
        back = last[house] - month
        # Rows outside a window go to one extra bucket past the end (cheaper than compacting 10 M rows).
        cell = np.where(back < WINDOW, house * WINDOW + back, n * WINDOW)
        total = np.bincount(cell, amount, minlength=n * WINDOW + 1)[:-1].reshape(n, WINDOW)
        wages = np.where(source == _WAGE, amount, 0.0)
        wage = np.bincount(cell, wages, minlength=n * WINDOW + 1)[:-1].reshape(n, WINDOW)
        offsets = np.arange(WINDOW)
        covered = (last[:, None] >= 0) & (last[:, None] - offsets[None, :] >= first[:, None])
        sources = len(INCOME_SOURCES)
        cell = np.where((back < 12) & (source >= 0), house * sources + source, n * sources)
        by_source = np.bincount(cell, amount, minlength=n * sources + 1)[:-1].reshape(n, sources)
        return IncomeWindows(total=total, wage=wage, covered=covered, by_source_12m=by_source, last=last,
                             recent_known=recent_known)

    return snap.cached("income_windows", compute)


def _window_mean(values: np.ndarray, covered: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Mean monthly value over the covered months of offsets start..stop-1 (NaN if none covered)."""
    months = covered[:, start:stop].sum(axis=1)
    return ratio(values[:, start:stop].sum(axis=1), months.astype(np.float64))


def _drop(recent: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``1 - recent / base``; 0 where there is no positive base to drop from."""
    return np.where((base > 0) & ~np.isnan(recent), 1.0 - ratio(recent, base), 0.0)


def _income_mean(snap: Snapshot, start: int, stop: int) -> np.ndarray:
    """Mean monthly household income over the covered months of offsets start..stop-1 (computed once
    per snapshot: the last 3 months are read by several features)."""

    def compute() -> np.ndarray:
        w = income_windows(snap)
        return _window_mean(w.total, w.covered, start, stop)

    return snap.cached(f"income_mean_{start}_{stop}", compute)


def household_income_annual(snap: Snapshot) -> np.ndarray:
    """Household income over the last 12 known complete months, annualised from covered months (yuan/year)."""
    return snap.cached("household_income_annual", lambda: _income_mean(snap, 0, 12) * 12)


def income_pc_month_3m(snap: Snapshot) -> np.ndarray:
    """Per-capita monthly income, mean of the last 3 known complete months (yuan/person/month)."""
    return snap.cached("income_pc_month_3m", lambda: per_capita(snap, _income_mean(snap, 0, 3)))


@feature(name="income_pc_12m", group="income", source=("income", "members"), window_months=12,
         unit="yuan/person/year", monotone=-1,
         zh="近12个月家庭人均收入{value:,.0f}元",
         en="Household income over the last 12 months: {value:,.0f} yuan per person",
         label_zh="近12个月家庭人均收入", label_en="Per-capita household income over 12 months",
         description="Household income of all sources over the last 12 known complete months "
                     "(annualised when fewer months are on record) divided by household size. NaN without "
                     "income records or members.")
def income_pc_12m(snap: Snapshot) -> np.ndarray:
    return snap.cached("income_pc_12m", lambda: per_capita(snap, household_income_annual(snap)))


@feature(name="income_to_monitoring_line", group="income", source=("income", "members", "standards"),
         window_months=12, unit="ratio", monotone=-1,
         zh="人均年收入为当地防返贫监测线的{value:.0%}",
         en="Per-capita annual income is {value:.0%} of the local relapse-monitoring line",
         label_zh="人均年收入与防返贫监测线之比", label_en="Income relative to the monitoring line",
         description="income_pc_12m / the local monitoring line (county, urban/rural) in force at T.")
def income_to_monitoring_line(snap: Snapshot) -> np.ndarray:
    return ratio(income_pc_12m(snap), standards(snap).monitoring_line)


@feature(name="net_income_to_monitoring_line", group="income",
         source=("income", "medical_claims", "members", "standards"), window_months=12, unit="ratio",
         monotone=-1,
         zh="扣除自付医疗费用后，人均年收入为当地防返贫监测线的{value:.0%}",
         en="After out-of-pocket medical bills, per-capita annual income is {value:.0%} of the local "
            "relapse-monitoring line",
         label_zh="扣除医疗支出后的人均收入与监测线之比",
         label_en="Net income relative to the monitoring line",
         description="(household income of the last 12 known complete months, annualised, - out-of-pocket "
                     "medical spending of the last 12 months) / household size / local monitoring line: "
                     "the quantity the relapse label is judged on, as known at T. Can be negative.")
def net_income_to_monitoring_line(snap: Snapshot) -> np.ndarray:
    net = household_income_annual(snap) - medical_oop(snap, 12)
    return ratio(per_capita(snap, net), standards(snap).monitoring_line)


@feature(name="income_to_dibao_standard", group="income", source=("income", "members", "standards"),
         window_months=3, unit="ratio", monotone=-1,
         zh="近3个月人均月收入为当地低保标准的{value:.0%}",
         en="Per-capita monthly income in the last 3 months is {value:.0%} of the local dibao standard",
         label_zh="人均月收入与低保标准之比", label_en="Income relative to the dibao standard",
         description="Per-capita monthly income (mean of the last 3 known complete months) / local dibao "
                     "standard.")
def income_to_dibao_standard(snap: Snapshot) -> np.ndarray:
    return ratio(income_pc_month_3m(snap), standards(snap).dibao_standard)


@feature(name="income_to_edge_line", group="income", source=("income", "members", "standards"),
         window_months=3, unit="ratio", monotone=-1,
         zh="近3个月人均月收入为低保边缘标准的{value:.0%}",
         en="Per-capita monthly income in the last 3 months is {value:.0%} of the low-income edge line",
         label_zh="人均月收入与低保边缘标准之比", label_en="Income relative to the edge-family line",
         description="Same numerator as income_to_dibao_standard / (policy edge_multiplier x dibao "
                     "standard).")
def income_to_edge_line(snap: Snapshot) -> np.ndarray:
    line = policy_value(snap, "edge_multiplier") * standards(snap).dibao_standard
    return ratio(income_pc_month_3m(snap), line)


@feature(name="income_drop_3m_vs_12m", group="income", source=("income",), window_months=15,
         unit="ratio", monotone=+1,
         zh="近3个月人均收入较前12个月平均下降{value:.0%}",
         en="Income in the last 3 months fell {value:.0%} below the average of the 12 months before",
         alt_below=0.0,
         zh_alt="近3个月人均收入较前12个月平均上升{value:.0%}",
         en_alt="Income in the last 3 months rose {value:.0%} above the average of the 12 months before",
         label_zh="近3个月收入降幅", label_en="Income drop in the last 3 months",
         description="1 - mean monthly income of the last 3 known complete months / mean of the 12 months "
                     "before (covered months only); 0 when there is no earlier income. Negative is a rise.")
def income_drop_3m_vs_12m(snap: Snapshot) -> np.ndarray:
    return _drop(_income_mean(snap, 0, 3), _income_mean(snap, 3, 15))


@feature(name="income_drop_yoy_3m", group="income", source=("income",), window_months=15, unit="ratio",
         monotone=+1,
         zh="近3个月收入比上年同期下降{value:.0%}",
         en="Income in the last 3 months fell {value:.0%} below the same months a year earlier",
         alt_below=0.0,
         zh_alt="近3个月收入比上年同期上升{value:.0%}",
         en_alt="Income in the last 3 months rose {value:.0%} above the same months a year earlier",
         label_zh="收入同比降幅", label_en="Year-on-year income drop",
         description="1 - mean monthly income of the last 3 known complete months / mean of the same 3 "
                     "months a year earlier (seasonal farm income compared like with like); 0 without a "
                     "base.")
def income_drop_yoy_3m(snap: Snapshot) -> np.ndarray:
    return _drop(_income_mean(snap, 0, 3), _income_mean(snap, 12, 15))


@feature(name="wage_drop_3m_vs_12m", group="income", source=("income",), window_months=15, unit="ratio",
         monotone=+1,
         zh="近3个月务工（工资）收入较前12个月平均下降{value:.0%}",
         en="Wages in the last 3 months fell {value:.0%} below the average of the 12 months before",
         alt_below=0.0,
         zh_alt="近3个月务工（工资）收入较前12个月平均上升{value:.0%}",
         en_alt="Wages in the last 3 months rose {value:.0%} above the average of the 12 months before",
         label_zh="务工收入降幅", label_en="Wage drop",
         description="As income_drop_3m_vs_12m for wage income only; 0 when no wages were earned before.")
def wage_drop_3m_vs_12m(snap: Snapshot) -> np.ndarray:
    w = income_windows(snap)
    return _drop(_window_mean(w.wage, w.covered, 0, 3), _window_mean(w.wage, w.covered, 3, 15))


@feature(name="income_volatility_12m", group="income", source=("income",), window_months=12, unit="ratio",
         monotone=+1,
         zh="近12个月月收入忽高忽低，波动幅度约为月平均收入的{value:.0%}",
         en="Monthly income swung by about {value:.0%} of its average over the last 12 months",
         label_zh="月收入波动幅度", label_en="Income volatility",
         description="Coefficient of variation (population std / mean) of monthly household income over "
                     "the covered months of the last 12; NaN with fewer than 3 months, 0 when mean is 0.")
def income_volatility_12m(snap: Snapshot) -> np.ndarray:
    w = income_windows(snap)
    covered = w.covered[:, :12]
    months = covered.sum(axis=1).astype(np.float64)
    mean = ratio(w.total[:, :12].sum(axis=1), months)
    squares = np.where(covered, (w.total[:, :12] - mean[:, None]) ** 2, 0.0).sum(axis=1)
    std = np.sqrt(ratio(squares, months))
    cv = np.where(mean > 0, ratio(std, mean), 0.0)
    return np.where(months >= 3, cv, np.nan)


@feature(name="zero_income_months_12m", group="income", source=("income",), window_months=12,
         unit="months", monotone=+1,
         zh="近12个月中有{value:.0f}个月家庭没有任何收入",
         en="The household had no income at all in {value:.0f} of the last 12 months",
         label_zh="无收入月数", label_en="Months without income",
         description="Covered months among the last 12 known complete months with zero household income; "
                     "NaN without income records.")
def zero_income_months_12m(snap: Snapshot) -> np.ndarray:
    w = income_windows(snap)
    zero = (w.covered[:, :12] & (w.total[:, :12] <= 0)).sum(axis=1).astype(np.float64)
    return np.where(w.last >= 0, zero, np.nan)


def _share(source: str):
    def build(snap: Snapshot) -> np.ndarray:
        w = income_windows(snap)
        return ratio(w.by_source_12m[:, INCOME_SOURCES.index(source)], w.by_source_12m.sum(axis=1))

    build.__name__ = f"income_share_{source}"
    build.__doc__ = f"Share of {source} income in household income over the last 12 known complete months."
    return build


_SHARE_WORDS = {
    "wage": ("工资性（务工）收入", "Wages"),
    "farming": ("农业生产经营收入", "Farming income"),
    "business": ("个体经营收入", "Business income"),
    "transfer": ("转移性收入（补贴、救助等）", "Transfers (subsidies, assistance)"),
    "pension": ("养老金收入", "Pensions"),
}
for _source, (_zh, _en) in _SHARE_WORDS.items():
    feature(name=f"income_share_{_source}", group="income", source=("income",), window_months=12,
            unit="share", monotone=0,
            zh=f"{_zh}占近12个月家庭收入的{{value:.0%}}",
            en=f"{_en} made up {{value:.0%}} of household income over the last 12 months",
            label_zh=f"{_zh}占比", label_en=f"{_en} share of income",
            description=f"{_en} / all income over the last 12 known complete months; NaN when income is 0.",
            )(_share(_source))


@feature(name="income_months_known_last_3", group="income", source=("income",), window_months=3,
         unit="months", monotone=0, fill=0.0,
         zh="最近3个月中已有{value:.0f}个月的收入记录",
         en="Income is on record for {value:.0f} of the last 3 calendar months",
         label_zh="最近3个月收入记录月数", label_en="Recent months with income records",
         description="How many of the 3 calendar months before T's month have any income record known at T, "
                     "complete or not (data freshness: with T on the first of a month the last of them is "
                     "usually not recorded yet, so 2 is up to date). The income levels and drops read only "
                     "complete months (see income_staleness_months).")
def income_months_known_last_3(snap: Snapshot) -> np.ndarray:
    return income_windows(snap).recent_known


@feature(name="income_staleness_months", group="income", source=("income",), window_months=None,
         unit="months", monotone=0,
         zh="收入指标所依据的最近完整月份距今{value:.0f}个月",
         en="The latest complete income month the income figures rest on is {value:.0f} months old",
         label_zh="收入数据滞后月数", label_en="Age of the latest complete income month",
         description="Months between the month before T's month and the household's latest known complete "
                     "income month L, the month the income windows end at. Income of a month is "
                     f"complete {_LAG} months after it ends (complete_after_months in the data contract), "
                     f"so {_LAG} is up to date and more means no income record in the latest complete "
                     "months (income stopped, or stopped arriving); NaN without income records.")
def income_staleness_months(snap: Snapshot) -> np.ndarray:
    last = income_windows(snap).last
    return np.where(last >= 0, (snap.month - 1 - last).astype(np.float64), np.nan)
