"""Household composition features: size, dependants, disability, elderly alone, schooling, labour.

Members are those known and born before T; ages are computed at T. A disability counts from its
certification date (a missing date means certified before the data start).
"""

from __future__ import annotations

import numpy as np

from doudi.contract import LABOUR_CAPACITY, RELATIONS
from features.common import CHILD_AGE, ELDERLY_AGE, household_size, members, policy_rules, ratio
from features.registry import feature
from features.snapshot import Snapshot

_FULL, _PARTIAL = LABOUR_CAPACITY.index("full"), LABOUR_CAPACITY.index("partial")
_HEAD = RELATIONS.index("head")
_MAX_GRADE = 4


def _count(snap: Snapshot, mask: np.ndarray) -> np.ndarray:
    return snap.per_household(members(snap)["_h"][mask])


def _certified_grade(snap: Snapshot) -> np.ndarray:
    """Each member's disability grade at T (0 when none or not yet certified)."""

    def compute() -> np.ndarray:
        people = members(snap)
        grade = people["disability_grade"].astype(np.float64)
        # Missing grades read 0 (np.nan_to_num did the same at several times the cost).
        grade = np.where(np.isnan(grade), 0.0, grade).astype(np.int64)
        if "disability_certified_at" in people:
            certified = people["disability_certified_at"]
            grade = np.where(~np.isnat(certified) & (certified >= snap.as_of.to_datetime64()), 0, grade)
        return np.minimum(np.maximum(grade, 0), _MAX_GRADE)  # np.clip, at less cost per call

    return snap.cached("certified_grade", compute)


@feature(name="household_size", group="household", source=("members",), window_months=None,
         unit="persons", monotone=0, fill=0.0,
         zh="家庭共有{value:.0f}口人",
         en="The household has {value:.0f} members",
         label_zh="家庭人口", label_en="Household size",
         description="Members known and born before T.")
def household_size_feature(snap: Snapshot) -> np.ndarray:
    return household_size(snap)


@feature(name="dependant_share", group="household", source=("members",), window_months=None,
         unit="share", monotone=+1,
         zh="家中16岁以下儿童和60岁及以上老人占家庭人口的{value:.0%}",
         en="Children under 16 and people aged 60 or over make up {value:.0%} of the household",
         label_zh="被抚养人口占比", label_en="Share of dependants",
         description="(members under 16 + members 60 or over) / household size at T; NaN without members.")
def dependant_share(snap: Snapshot) -> np.ndarray:
    age = members(snap)["age"]
    return ratio(_count(snap, (age < CHILD_AGE) | (age >= ELDERLY_AGE)), household_size(snap))


@feature(name="elderly_living_alone", group="household", source=("members",), window_months=None,
         unit="0/1", monotone=+1, fill=0.0,
         zh="独居老人：户内只有一位60岁及以上的老人",
         en="An older person (60 or over) living alone",
         alt_below=0.5,
         zh_alt="不是独居老人户",
         en_alt="Not an older person living alone",
         label_zh="独居老人", label_en="Older person living alone",
         description="1 when the household has exactly one member and that member is 60 or over at T.")
def elderly_living_alone(snap: Snapshot) -> np.ndarray:
    age = members(snap)["age"]
    alone = household_size(snap) == 1
    return (alone & (_count(snap, age >= ELDERLY_AGE) == 1)).astype(np.float64)


@feature(name="children_in_school", group="household", source=("members",), window_months=None,
         unit="persons", monotone=+1, fill=0.0,
         zh="家中有{value:.0f}名在校学生",
         en="{value:.0f} household members are in school",
         label_zh="在校学生人数", label_en="Members in school",
         description="Members enrolled in school (education costs).")
def children_in_school(snap: Snapshot) -> np.ndarray:
    return _count(snap, members(snap)["in_school"].astype(np.float64) > 0)


@feature(name="disabled_members", group="household", source=("members",), window_months=None,
         unit="persons", monotone=+1, fill=0.0,
         zh="家中有{value:.0f}名持证残疾人",
         en="{value:.0f} household members have a certified disability",
         label_zh="残疾人数", label_en="Members with a disability",
         description="Members with a disability grade 1-4 certified before T.")
def disabled_members(snap: Snapshot) -> np.ndarray:
    return _count(snap, _certified_grade(snap) > 0)


@feature(name="severe_disabled_members", group="household", source=("members",), window_months=None,
         unit="persons", monotone=+1, fill=0.0,
         zh="家中有{value:.0f}名重度残疾人",
         en="{value:.0f} household members have a severe disability",
         label_zh="重度残疾人数", label_en="Members with a severe disability",
         description="Members whose certified grade is a severe grade of the local policy "
                     "(serious_disability_grades, 1-2 by default).")
def severe_disabled_members(snap: Snapshot) -> np.ndarray:
    distinct, rules_index = policy_rules(snap)
    severe = np.zeros((len(distinct), _MAX_GRADE + 1), dtype=bool)
    for row, rules in enumerate(distinct):
        severe[row, [g for g in rules.serious_disability_grades if 0 < g <= _MAX_GRADE]] = True
    house = members(snap)["_h"]
    return _count(snap, severe[rules_index[house], _certified_grade(snap)])


@feature(name="labour_members", group="household", source=("members",), window_months=None,
         unit="persons", monotone=-1, fill=0.0,
         zh="家中有劳动能力的成员{value:.0f}人",
         en="{value:.0f} household members are able to work",
         label_zh="有劳动能力人数", label_en="Members able to work",
         description="Members with full or partial labour capacity.")
def labour_members(snap: Snapshot) -> np.ndarray:
    capacity = members(snap)["labour_capacity"]
    return _count(snap, (capacity == _FULL) | (capacity == _PARTIAL))


@feature(name="labour_share", group="household", source=("members",), window_months=None,
         unit="share", monotone=-1,
         zh="按劳动能力折算，能干活的人占家庭人口的{value:.0%}（部分劳动能力按半个人算）",
         en="Counting partial labour capacity as half, {value:.0%} of the household can work",
         label_zh="劳动力占比", label_en="Share able to work",
         description="(full + 0.5 x partial labour capacity) / household size; NaN without members.")
def labour_share(snap: Snapshot) -> np.ndarray:
    capacity = members(snap)["labour_capacity"]
    weight = np.where(capacity == _FULL, 1.0, np.where(capacity == _PARTIAL, 0.5, 0.0))
    return ratio(snap.per_household(members(snap)["_h"], weight), household_size(snap))


@feature(name="head_age", group="household", source=("members",), window_months=None, unit="years",
         monotone=0,
         zh="户主{value:.0f}岁",
         en="The head of household is {value:.0f} years old",
         label_zh="户主年龄", label_en="Age of the head of household",
         description="Age at T of the member recorded as head (the oldest if several); NaN if none.")
def head_age(snap: Snapshot) -> np.ndarray:
    people = members(snap)
    head = people["relation"] == _HEAD
    return snap.per_household_max(people["_h"][head], people["age"][head])
