"""Region features: where the household lives and the local standards and prices at T."""

from __future__ import annotations

import numpy as np

from features.common import county_codes, standards, urban_rural_labels
from features.registry import feature
from features.snapshot import Snapshot


@feature(name="county_code", group="region", source=("households",), window_months=None, unit="code",
         monotone=0, kind="categorical", reason=False,
         zh="所在县（市、区）行政区划代码为{value}",
         en="Lives in the county with division code {value}",
         label_zh="所在县（市、区）", label_en="County",
         description="6-digit county code (first 6 digits of the village code); categorical.")
def county_code(snap: Snapshot) -> np.ndarray:
    return county_codes(snap)


@feature(name="urban_rural", group="region", source=("households",), window_months=None, unit="category",
         monotone=0, kind="categorical", reason=False,
         zh="户籍类型：{value}",
         en="Registered as {value}",
         value_words=(("urban", "城镇户", "an urban household"), ("rural", "农村户", "a rural household")),
         label_zh="城乡类型", label_en="Urban or rural",
         description="Urban or rural household registration (contract values 'urban', 'rural'); "
                     "categorical.")
def urban_rural(snap: Snapshot) -> np.ndarray:
    return urban_rural_labels(snap.table("households")["urban_rural"])


@feature(name="dibao_standard", group="region", reason=False, source=("standards",), window_months=None,
         unit="yuan/person/month", monotone=0,
         zh="当地低保标准为每人每月{value:,.0f}元",
         en="The local dibao standard is {value:,.0f} yuan per person a month",
         label_zh="当地低保标准", label_en="Local dibao standard",
         description="Dibao standard for the household's county and urban/rural in force at T.")
def dibao_standard(snap: Snapshot) -> np.ndarray:
    return standards(snap).dibao_standard


@feature(name="cpi_yoy", group="region", reason=False,
         source=("standards",), window_months=None, unit="percent",
         monotone=+1,
         zh="当地居民消费价格同比上涨{value:.1f}%",
         en="Local consumer prices rose {value:.1f}% year on year",
         alt_below=0.0,
         zh_alt="当地居民消费价格同比下降{value:.1f}%",
         en_alt="Local consumer prices fell {value:.1f}% year on year",
         label_zh="当地物价涨幅", label_en="Local consumer price inflation",
         description="CPI year-on-year change (percent) in the standards row in force at T.")
def cpi_yoy(snap: Snapshot) -> np.ndarray:
    return standards(snap).cpi_yoy


@feature(name="food_cpi_yoy", group="region", reason=False,
         source=("standards",), window_months=None, unit="percent",
         monotone=+1,
         zh="当地食品价格同比上涨{value:.1f}%",
         en="Local food prices rose {value:.1f}% year on year",
         alt_below=0.0,
         zh_alt="当地食品价格同比下降{value:.1f}%",
         en_alt="Local food prices fell {value:.1f}% year on year",
         label_zh="当地食品价格涨幅", label_en="Local food price inflation",
         description="Food CPI year-on-year change (percent) in the standards row in force at T; NaN "
                     "when not published.")
def food_cpi_yoy(snap: Snapshot) -> np.ndarray:
    return standards(snap).food_cpi_yoy
