"""Medical features: out-of-pocket spending, its weight against income, serious illness, stays.

Claims are dated by discharge (the contract's event column), windows are calendar months before T
(``discharge_date >= T - k months``). No claim means no spending: amounts and counts are 0 for
households without claims (medical insurance covers every resident, so absence is informative).
"""

from __future__ import annotations

import numpy as np

from features.common import capped_share, medical_oop, ratio, standards
from features.income import household_income_annual
from features.registry import feature
from features.snapshot import Snapshot, select_rows

SHARE_CAP = 10.0


def _claims(snap: Snapshot, months: int):
    """Claims discharged within the last ``months`` months before T (selected once per snapshot)."""

    def compute():
        table = snap.table("medical_claims")
        return select_rows(table, table["discharge_date"] >= snap.months_ago(months))

    return snap.cached(f"claims_{months}m", compute)


@feature(name="medical_oop_3m", group="medical", source=("medical_claims",), window_months=3, unit="yuan",
         monotone=+1, fill=0.0,
         zh="近3个月家庭自付医疗费用{value:,.0f}元",
         en="The household paid {value:,.0f} yuan of medical bills itself in the last 3 months",
         label_zh="近3个月自付医疗费用", label_en="Out-of-pocket medical spending (3 months)",
         description="Sum of out_of_pocket over claims discharged in the 3 months before T.")
def medical_oop_3m(snap: Snapshot) -> np.ndarray:
    return medical_oop(snap, 3)


@feature(name="medical_oop_12m", group="medical", source=("medical_claims",), window_months=12,
         unit="yuan", monotone=+1, fill=0.0,
         zh="近12个月家庭自付医疗费用{value:,.0f}元",
         en="The household paid {value:,.0f} yuan of medical bills itself in the last 12 months",
         label_zh="近12个月自付医疗费用", label_en="Out-of-pocket medical spending (12 months)",
         description="Sum of out_of_pocket over claims discharged in the 12 months before T.")
def medical_oop_12m(snap: Snapshot) -> np.ndarray:
    return medical_oop(snap, 12)


@feature(name="medical_oop_share_12m", group="medical", source=("medical_claims", "income"),
         window_months=12, unit="ratio", monotone=+1,
         zh="近12个月自付医疗费用相当于家庭年收入的{value:.0%}",
         en="Out-of-pocket medical spending over 12 months equals {value:.0%} of household income",
         label_zh="自付医疗费用占家庭收入比例", label_en="Medical spending relative to income",
         description="medical_oop_12m / household income of the last 12 known months (annualised), "
                     "capped at 10; 0 without spending, 10 when spending meets zero income, NaN when "
                     "income is unknown (catastrophic health spending).")
def medical_oop_share_12m(snap: Snapshot) -> np.ndarray:
    return capped_share(medical_oop(snap, 12), household_income_annual(snap), SHARE_CAP)


@feature(name="medical_oop_to_local_income", group="medical", source=("medical_claims", "standards"),
         window_months=12, unit="ratio", monotone=+1,
         zh="近12个月自付医疗费用相当于当地上年人均可支配收入的{value:.0%}",
         en="Out-of-pocket medical spending over 12 months equals {value:.0%} of last year's local "
            "per-capita disposable income",
         label_zh="自付医疗费用与当地人均可支配收入之比",
         label_en="Medical spending relative to local income",
         description="medical_oop_12m / last year's local per-capita disposable income (the yardstick "
                     "of the medical-bill trigger); NaN without a standard.")
def medical_oop_to_local_income(snap: Snapshot) -> np.ndarray:
    return ratio(medical_oop(snap, 12), standards(snap).disposable_income_last_year)


@feature(name="medical_oop_trend", group="medical", source=("medical_claims",), window_months=12,
         unit="yuan/month", monotone=+1, fill=0.0,
         zh="近3个月平均每月自付医疗费用比之前9个月多{value:,.0f}元",
         en="Out-of-pocket medical spending in the last 3 months was {value:,.0f} yuan a month higher "
            "than in the 9 months before",
         alt_below=0.0,
         zh_alt="近3个月平均每月自付医疗费用比之前9个月少{value:,.0f}元",
         en_alt="Out-of-pocket medical spending in the last 3 months was {value:,.0f} yuan a month lower "
                "than in the 9 months before",
         label_zh="自付医疗费用变化", label_en="Change in medical spending",
         description="Monthly mean out-of-pocket of the last 3 months minus that of the 9 months before "
                     "(an illness that costs more over time).")
def medical_oop_trend(snap: Snapshot) -> np.ndarray:
    recent, year = medical_oop(snap, 3), medical_oop(snap, 12)
    return recent / 3 - (year - recent) / 9


@feature(name="serious_illness", group="medical", source=("medical_claims",), window_months=12,
         unit="0/1", monotone=+1, fill=0.0,
         zh="近12个月有家庭成员患大病（重特大疾病）就医",
         en="A household member was treated for a serious illness in the last 12 months",
         alt_below=0.5,
         zh_alt="近12个月没有家庭成员大病就医记录",
         en_alt="No serious-illness treatment in the household in the last 12 months",
         label_zh="大病就医", label_en="Serious illness",
         description="1 if a claim discharged in the 12 months before T is on the serious-illness list.")
def serious_illness(snap: Snapshot) -> np.ndarray:
    claims = _claims(snap, 12)
    serious = claims["serious_illness"].astype(np.float64) > 0
    return (snap.per_household(claims["_h"][serious]) > 0).astype(np.float64)


@feature(name="inpatient_stays_12m", group="medical", source=("medical_claims",), window_months=12,
         unit="count", monotone=+1, fill=0.0,
         zh="近12个月家庭成员住院{value:.0f}次",
         en="Household members were admitted to hospital {value:.0f} times in the last 12 months",
         label_zh="住院次数", label_en="Hospital stays",
         description="Inpatient claims discharged in the 12 months before T.")
def inpatient_stays_12m(snap: Snapshot) -> np.ndarray:
    claims = _claims(snap, 12)
    inpatient = claims["inpatient"].astype(np.float64) > 0
    return snap.per_household(claims["_h"][inpatient])


@feature(name="medical_claim_months_12m", group="medical", source=("medical_claims",), window_months=12,
         unit="months", monotone=+1, fill=0.0,
         zh="近12个月中有{value:.0f}个月有就医结算记录",
         en="Medical bills were settled in {value:.0f} of the last 12 months",
         label_zh="就医月数", label_en="Months with medical bills",
         description="Distinct calendar months (by discharge) with a claim in the 12 months before T: "
                     "ongoing treatment rather than a single episode.")
def medical_claim_months_12m(snap: Snapshot) -> np.ndarray:
    claims = _claims(snap, 12)
    month = claims["discharge_date"].astype("datetime64[M]").astype(np.int64)
    offset = np.minimum(np.maximum(snap.month - 1970 * 12 - month, 0), 12)  # np.clip, at less cost per call
    seen = np.bincount(claims["_h"] * 13 + offset, minlength=snap.n * 13)
    return (seen.reshape(snap.n, 13) > 0).sum(axis=1).astype(np.float64)
