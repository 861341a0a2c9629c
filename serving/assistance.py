"""Recommended assistance (对应救助帮扶): which programmes a household probably qualifies for, and why.

Each rule reads the policy ratios (``doudi/policy.yaml``, per region), the local standards in force at
T and the household's records known before T, and states the figures it used, so that a social worker
can check it by hand. A person decides; these are pointers to the programmes to verify.

Income figures come from the features themselves (``dibao_standard``, and per-capita monthly income =
``income_to_dibao_standard`` x ``dibao_standard``, the mean of the last 3 known months), so a
recommendation never disagrees with the features and triggers shown beside it.

Worked example (dibao by difference): a household of 3 whose monthly income over its last 3 known months
averaged 1,500 yuan, one member earning wages (employment-cost deduction 300 yuan/month), in a county
whose dibao standard is 700 yuan/person/month: per-capita income after the deduction is
(1,500 - 300) / 3 = 400 yuan, below 700, so dibao is recommended with an estimated benefit of
(700 - 400) x 3 = 900 yuan a month.

Rules (thresholds from policy, lines from ``standards``; "income" is per-capita monthly income):
  * 特困 tekun: no member aged 18+ with full or partial labour capacity to support the family, and
    income below tekun_multiplier x dibao standard; covers the members without labour capacity and the
    minors under tekun_minor_age, at the basic living standard (multiplier x standard) each.
  * dibao: income after the employment-cost deduction below the dibao standard, deposits (when checked)
    under deposit_limit_months x standard x members; benefit by difference. Not when 特困 covers everyone.
  * 单人户 single-person dibao: not eligible as a household but below the edge line, with a member
    seriously ill (serious-illness claim in 12 months) or severely disabled (grade in
    serious_disability_grades): that member alone, at the dibao standard.
  * edge family: at or above the dibao standard, below edge_multiplier x standard, assets within limits.
  * temporary: assessed disaster loss >= disaster_loss_trigger (12 months), or an uninsured job loss
    (6 months).
  * medical: out-of-pocket spending in 12 months with a serious illness, or over medical_trigger_share
    of household income.
  * education: a member in school in a low-income family (below the edge line or already assisted).
  * housing: the house was severely damaged or collapsed in a disaster in the last 12 months.
Nothing is recommended that the household already receives (ongoing dibao, 特困 or edge status).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from doudi.io import World
from doudi.policy import PolicyConfig

_POLICY_FIELDS = ("edge_multiplier", "tekun_multiplier", "tekun_minor_age", "employment_cost_deduction",
                  "disaster_loss_trigger", "medical_trigger_share", "deposit_limit_months",
                  "edge_assistance_temporary_months")
_FEATURES = ("serious_illness", "medical_oop_12m", "medical_oop_share_12m", "disaster_loss_12m",
             "uninsured_job_loss_6m")
_DAMAGE = {"none": 0, "minor": 1, "severe": 2, "collapsed": 3}
ADULT_AGE = 18
DAYS_PER_YEAR = 365.25


def _policy_table(villages: pd.Series, policy: PolicyConfig) -> pd.DataFrame:
    """Policy fields per household, looked up once per distinct village (overrides by prefix)."""
    codes, uniques = pd.factorize(villages.fillna("").astype(str))
    rules = [policy.for_region(v) for v in uniques]
    table = pd.DataFrame([{f: float(getattr(r, f)) for f in _POLICY_FIELDS} for r in rules],
                         columns=list(_POLICY_FIELDS))
    out = table.iloc[codes].set_axis(villages.index)
    out["serious_grades"] = pd.Series([tuple(rules[c].serious_disability_grades) for c in codes],
                                      index=villages.index, dtype=object)
    return out


def _persons(known: World, ids: pd.Index, as_of: pd.Timestamp, policy: pd.DataFrame) -> pd.DataFrame:
    """Members of the households with age, and whether each could be 特困-supported or enrolled alone."""
    members = known.get("members")
    if members is None or not len(members):
        return pd.DataFrame(columns=["household_id", "person_id", "tekun", "single", "student", "supporter"])
    members = members[members["household_id"].astype(str).isin(ids)]
    household = members["household_id"].astype(str)
    age = (as_of - members["birth_date"]).dt.days.to_numpy(np.float64) / DAYS_PER_YEAR
    labour = members["labour_capacity"].astype(str).to_numpy()
    grade = pd.to_numeric(members["disability_grade"], errors="coerce").fillna(0).astype(int).to_numpy()
    rules = policy.loc[household]
    allowed_grades = rules["serious_grades"].to_numpy()
    serious_grade = np.array([g in allowed for g, allowed in zip(grade, allowed_grades, strict=True)],
                             dtype=bool)
    window = as_of - pd.DateOffset(months=12)
    claims = known.get("medical_claims")
    ill: set[str] = set()
    if claims is not None and len(claims):
        serious = claims[claims["serious_illness"].astype(bool) & (claims["discharge_date"] >= window)]
        ill = set(serious["person_id"].astype(str))
    person = members["person_id"].astype(str)
    return pd.DataFrame({
        "household_id": household.to_numpy(),
        "person_id": person.to_numpy(),
        "supporter": np.isin(labour, ("full", "partial")) & (age >= ADULT_AGE),
        "tekun": (labour == "none") | (age < rules["tekun_minor_age"].to_numpy()),
        "single": person.isin(ill).to_numpy() | serious_grade,
        "student": members["in_school"].fillna(False).astype(bool).to_numpy(),
    })


def household_facts(world: World, as_of: pd.Timestamp, features: pd.DataFrame, policy: PolicyConfig
                    ) -> pd.DataFrame:
    """The figures every rule reads, one row per household of ``features`` (its index), as of T.

    Args:
        world: contract-form world.
        as_of: T; only records known before T count.
        features: ``build_features`` output for the households to advise (any subset of the world).
        policy: policy configuration.
    """
    from features.snapshot import known_before, month_index, timestamp_month

    ids = pd.Index(features.index.astype(str), name="household_id")
    homes = world["households"]
    homes = homes[homes["household_id"].astype(str).isin(ids)]
    villages = pd.Series(homes["village_code"].astype(str).to_numpy(),
                         index=homes["household_id"].astype(str).to_numpy())
    if not ids.isin(villages.index).all():
        raise KeyError(f"households not in the world: {list(ids[~ids.isin(villages.index)][:5])}")
    villages = villages.reindex(ids)

    # From the features themselves (the same standard in force and the same 3-month income window):
    # per-capita monthly income = income_to_dibao_standard x dibao_standard.
    std = features["dibao_standard"].to_numpy(np.float64)
    pc_income = features["income_to_dibao_standard"].to_numpy(np.float64) * std
    # The household's latest known income month, from the staleness feature.
    staleness = features["income_staleness_months"].to_numpy(np.float64)
    last = pd.Series(timestamp_month(as_of) - 1 - staleness, index=ids)

    # Working members: distinct people with wage income in the household's last 3 known months (the
    # window of the income features); person ids come from the contract-form records.
    wanted: World = {name: world[name][world[name]["household_id"].astype(str).isin(ids)]
              for name in ("members", "income", "medical_claims", "assistance", "assets", "disaster_losses")
              if name in world}
    known = known_before(wanted, as_of)
    working = pd.Series(0, index=ids)
    income = known.get("income")
    if income is not None and len(income):
        wages = income[(income["source"] == "wage") & income["person_id"].notna() & (income["amount"] > 0)]
        household = wages["household_id"].astype(str)
        recent = month_index(wages["month"]) >= last.reindex(household).to_numpy() - 2
        pairs = pd.DataFrame({"h": household[recent], "p": wages["person_id"][recent]}).drop_duplicates()
        working = pairs.groupby("h").size().reindex(ids, fill_value=0)

    policy_rows = _policy_table(villages, policy)
    persons = _persons(known, ids, as_of, policy_rows)
    by_household = persons.groupby("household_id")

    # Columns are gathered as arrays and the frame is built once: joins and column inserts on a
    # one-row frame cost more than the arithmetic (this runs in every API call).
    columns: dict[str, Any] = {
        "members": features["household_size"].to_numpy(np.float64),
        "dibao_standard": std,
        "pc_income": pc_income,
        "working": working.to_numpy(np.float64),
        **{name: policy_rows[name].to_numpy() for name in policy_rows.columns},
        "supported": by_household["supporter"].any().reindex(ids, fill_value=False).to_numpy(bool),
        "students": by_household["student"].sum().reindex(ids, fill_value=0).to_numpy(np.int64),
    }
    for kind in ("tekun", "single"):
        chosen = persons[persons[kind].to_numpy(bool)]
        lists = chosen.groupby("household_id")["person_id"].agg(list).reindex(ids)
        columns[f"{kind}_persons"] = lists.to_numpy(dtype=object)
        columns[f"n_{kind}"] = np.array([len(x) if isinstance(x, list) else 0 for x in lists], dtype=np.int64)

    for programme in ("dibao", "tekun", "edge"):
        columns[f"on_{programme}"] = np.zeros(len(ids), dtype=bool)
    aid = known.get("assistance")
    if aid is not None and len(aid):
        ongoing = aid[(aid["end_date"].isna() | (aid["end_date"] >= as_of))]
        for programme in ("dibao", "tekun", "edge"):
            held = ongoing.loc[ongoing["programme"] == programme, "household_id"].astype(str)
            columns[f"on_{programme}"] = ids.isin(held)

    columns["deposits"] = np.full(len(ids), np.nan)
    assets = known.get("assets")
    if assets is not None and len(assets):
        latest = (assets.sort_values("reported_date", kind="stable")
                  .drop_duplicates("household_id", keep="last"))
        deposits = latest.set_index(latest["household_id"].astype(str))["deposits"]
        columns["deposits"] = deposits.reindex(ids).to_numpy(np.float64)

    columns["housing_damage"] = np.full(len(ids), "none", dtype=object)
    losses = known.get("disaster_losses")
    if losses is not None and len(losses):
        recent = losses[losses["assessed_date"] >= as_of - pd.DateOffset(months=12)]
        level = (recent["housing_damage"].astype(str).map(_DAMAGE)
                 .groupby(recent["household_id"].astype(str)).max())
        names = np.array(list(_DAMAGE), dtype=object)
        columns["housing_damage"] = names[level.reindex(ids).fillna(0).to_numpy(np.int64)]

    for name in _FEATURES:
        columns[name] = (features[name].to_numpy(np.float64, na_value=np.nan) if name in features
                         else np.full(len(ids), np.nan))
    return derive(columns, ids)


def derive(c: dict[str, Any], ids: pd.Index) -> pd.DataFrame:
    """The facts frame: the gathered columns, the derived figures and one boolean column per programme
    (vectorised over households)."""
    c = dict(c)
    n = np.asarray(c["members"], dtype=np.float64)
    std = np.asarray(c["dibao_standard"], dtype=np.float64)
    income = np.asarray(c["pc_income"], dtype=np.float64)
    known_income = (n > 0) & ~np.isnan(std) & ~np.isnan(income)
    with np.errstate(invalid="ignore", divide="ignore"):
        deduction = c["employment_cost_deduction"] * c["working"]
        after = np.maximum(income * n - deduction, 0) / n
    c["pc_income_after_deduction"] = after
    c["edge_line"] = edge_line = c["edge_multiplier"] * std
    c["tekun_standard"] = tekun_line = c["tekun_multiplier"] * std
    c["deposit_limit"] = limit = c["deposit_limit_months"] * std * n
    c["dibao_benefit"] = (std - after) * n

    deposits = np.asarray(c["deposits"], dtype=np.float64)
    assets_ok = np.isnan(deposits) | (deposits < limit)
    below_std = known_income & (after < std)
    below_edge = known_income & (after < edge_line)
    on_dibao, on_tekun, on_edge = (np.asarray(c[k], dtype=bool) for k in ("on_dibao", "on_tekun", "on_edge"))
    tekun = (known_income & ~np.asarray(c["supported"], dtype=bool) & (c["n_tekun"] > 0)
             & (income < tekun_line) & ~on_tekun)
    everyone_tekun = tekun & (c["n_tekun"] >= n)
    loss = np.asarray(c["disaster_loss_12m"], dtype=np.float64)
    jobs = np.asarray(c["uninsured_job_loss_6m"], dtype=np.float64)
    c["disaster_hit"] = ~np.isnan(loss) & (loss >= c["disaster_loss_trigger"])
    c["jobless"] = ~np.isnan(jobs) & (jobs > 0)
    share = np.asarray(c["medical_oop_share_12m"], dtype=np.float64)
    ill = np.nan_to_num(np.asarray(c["serious_illness"], dtype=np.float64)) > 0
    c["serious"] = ill

    c["tekun"] = tekun
    c["dibao"] = below_std & assets_ok & ~on_dibao & ~on_tekun & ~everyone_tekun
    c["single_person"] = ~below_std & below_edge & (c["n_single"] > 0) & ~on_dibao & ~on_tekun
    c["edge"] = ~below_std & below_edge & assets_ok & ~on_dibao & ~on_tekun & ~on_edge
    c["temporary"] = c["disaster_hit"] | c["jobless"]
    c["medical"] = (np.nan_to_num(np.asarray(c["medical_oop_12m"], dtype=np.float64)) > 0) & (
        ill | (share > c["medical_trigger_share"]))
    c["education"] = (c["students"] > 0) & (below_edge | on_dibao | on_tekun | on_edge)
    c["housing"] = np.isin(np.asarray(c["housing_damage"], dtype=object), ("severe", "collapsed"))
    return pd.DataFrame(c, index=ids)


def _yuan(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 2)


def _income_figures(r: Any) -> dict[str, Any]:
    return {"members": int(r.members), "dibao_standard": _yuan(r.dibao_standard),
            "per_capita_income": _yuan(r.pc_income), "working_members": int(r.working),
            "employment_cost_deduction": _yuan(r.employment_cost_deduction),
            "per_capita_income_after_deduction": _yuan(r.pc_income_after_deduction)}


def _tekun(r: Any) -> dict[str, Any]:
    return {
        "zh": "建议认定特困人员救助供养", "en": "Consider extreme-poverty support (特困)",
        "rule_zh": f"家中无18周岁以上有劳动能力的成员；人均月收入{r.pc_income:,.0f}元低于特困基本生活标准"
                   f"{r.tekun_standard:,.0f}元（低保标准{r.dibao_standard:,.0f}元的{r.tekun_multiplier:g}倍）；"
                   f"{r.n_tekun}人无劳动能力或未满{r.tekun_minor_age:.0f}周岁",
        "rule_en": f"No member aged 18+ able to work; per-capita income {r.pc_income:,.0f} yuan/month is "
                   f"below the basic living standard {r.tekun_standard:,.0f} "
                   f"({r.tekun_multiplier:g} x the dibao "
                   f"standard {r.dibao_standard:,.0f}); {r.n_tekun} member(s) without labour capacity or "
                   f"under {r.tekun_minor_age:.0f}",
        "figures": {**_income_figures(r), "tekun_multiplier": r.tekun_multiplier,
                    "tekun_standard": _yuan(r.tekun_standard), "persons": r.n_tekun},
        "monthly_amount": _yuan(r.tekun_standard * r.n_tekun), "person_ids": list(r.tekun_persons),
    }


def _dibao(r: Any) -> dict[str, Any]:
    unchecked = pd.isna(r.deposits)
    deducted_zh = (f"扣除{r.working:.0f}名就业成员的就业成本"
                   f"（每人每月{r.employment_cost_deduction:,.0f}元）后，"
                   if r.working else "家中无就业成员（不扣就业成本），")
    deducted_en = (f"After deducting employment costs for {r.working:.0f} working member(s) "
                   f"({r.employment_cost_deduction:,.0f} yuan/month each), per-capita income is "
                   if r.working
                   else "With no working member (no employment-cost deduction), per-capita income is ")
    return {
        "zh": f"建议纳入低保，按差额估算每月约{r.dibao_benefit:,.0f}元",
        "en": f"Consider dibao; estimated benefit by difference about {r.dibao_benefit:,.0f} yuan/month",
        "rule_zh": deducted_zh +
                   f"家庭人均月收入{r.pc_income_after_deduction:,.0f}元，低于低保标准{r.dibao_standard:,.0f}元；"
                   f"（{r.dibao_standard:,.0f} − {r.pc_income_after_deduction:,.0f}）× {r.members:.0f}人 = "
                   f"{r.dibao_benefit:,.0f}元/月" + ("；家庭存款尚未核对" if unchecked else ""),
        "rule_en": deducted_en +
                   f"{r.pc_income_after_deduction:,.0f} yuan/month, below the dibao standard "
                   f"{r.dibao_standard:,.0f}; "
                   f"({r.dibao_standard:,.0f} - {r.pc_income_after_deduction:,.0f}) x "
                   f"{r.members:.0f} = {r.dibao_benefit:,.0f} yuan/month"
                   + ("; deposits not yet checked" if unchecked else ""),
        "figures": {**_income_figures(r), "deposits": _yuan(r.deposits),
                    "deposit_limit": _yuan(r.deposit_limit)},
        "monthly_amount": _yuan(r.dibao_benefit), "person_ids": [],
    }


def _single_person(r: Any) -> dict[str, Any]:
    return {
        "zh": "建议将重病或重度残疾成员“单人户”纳入低保",
        "en": "Consider enrolling the seriously ill or severely disabled member(s) alone in dibao (单人户)",
        "rule_zh": f"家庭人均月收入{r.pc_income_after_deduction:,.0f}元"
                   f"不低于低保标准{r.dibao_standard:,.0f}元，"
                   f"但低于低保边缘标准{r.edge_line:,.0f}元；{r.n_single}名成员患重病或重度残疾",
        "rule_en": f"Per-capita income {r.pc_income_after_deduction:,.0f} yuan/month is not below the dibao "
                   f"standard {r.dibao_standard:,.0f} but below the edge line {r.edge_line:,.0f}; "
                   f"{r.n_single} member(s) seriously ill or severely disabled",
        "figures": {**_income_figures(r), "edge_line": _yuan(r.edge_line), "persons": r.n_single},
        "monthly_amount": _yuan(r.dibao_standard * r.n_single), "person_ids": list(r.single_persons),
    }


def _edge(r: Any) -> dict[str, Any]:
    return {
        "zh": "建议认定为低保边缘家庭，给予专项救助",
        "en": "Consider low-income edge-family status (专项救助)",
        "rule_zh": f"家庭人均月收入{r.pc_income_after_deduction:,.0f}元，"
                   f"不低于低保标准{r.dibao_standard:,.0f}元、"
                   f"低于低保边缘标准{r.edge_line:,.0f}元（{r.edge_multiplier:g}倍）；遇急难可给予最长"
                   f"{r.edge_assistance_temporary_months:.0f}个月临时救助",
        "rule_en": f"Per-capita income {r.pc_income_after_deduction:,.0f} yuan/month is not below the dibao "
                   f"standard {r.dibao_standard:,.0f} and below the edge line {r.edge_line:,.0f} "
                   f"({r.edge_multiplier:g} x); temporary assistance for up to "
                   f"{r.edge_assistance_temporary_months:.0f} months in an emergency",
        "figures": {**_income_figures(r), "edge_line": _yuan(r.edge_line),
                    "edge_multiplier": r.edge_multiplier,
                    "temporary_months": int(r.edge_assistance_temporary_months)},
        "monthly_amount": None, "person_ids": [],
    }


def _temporary(r: Any) -> dict[str, Any]:
    zh, en = [], []
    if r.disaster_hit:
        zh.append(f"近12个月灾害损失{r.disaster_loss_12m:,.0f}元，达到{r.disaster_loss_trigger:,.0f}元")
        en.append(f"disaster loss of {r.disaster_loss_12m:,.0f} yuan in 12 months (at least "
                  f"{r.disaster_loss_trigger:,.0f})")
    if r.jobless:
        zh.append(f"近6个月{r.uninsured_job_loss_6m:.0f}人次失业且未参加失业保险")
        en.append(f"{r.uninsured_job_loss_6m:.0f} job loss(es) without unemployment insurance in 6 months")
    return {
        "zh": "建议给予临时救助", "en": "Consider temporary assistance (临时救助)",
        "rule_zh": "；".join(zh), "rule_en": "; ".join(en).capitalize(),
        "figures": {"disaster_loss_12m": _yuan(r.disaster_loss_12m),
                    "disaster_loss_trigger": _yuan(r.disaster_loss_trigger),
                    "uninsured_job_loss_6m": None if pd.isna(r.uninsured_job_loss_6m)
                    else int(r.uninsured_job_loss_6m)},
        "monthly_amount": None, "person_ids": [],
    }


def _medical(r: Any) -> dict[str, Any]:
    share = "" if pd.isna(r.medical_oop_share_12m) else f"，占家庭收入{r.medical_oop_share_12m:.0%}"
    share_en = ("" if pd.isna(r.medical_oop_share_12m)
                else f", {r.medical_oop_share_12m:.0%} of household income")
    return {
        "zh": "建议给予医疗救助", "en": "Consider medical assistance (医疗救助)",
        "rule_zh": f"近12个月自付医疗费用{r.medical_oop_12m:,.0f}元{share}"
                   + ("；有成员患重特大疾病" if r.serious else ""),
        "rule_en": f"Out-of-pocket medical spending of {r.medical_oop_12m:,.0f} yuan in 12 months{share_en}"
                   + ("; a member has a serious illness" if r.serious else ""),
        "figures": {"medical_oop_12m": _yuan(r.medical_oop_12m),
                    "medical_oop_share_12m": None if pd.isna(r.medical_oop_share_12m)
                    else round(float(r.medical_oop_share_12m), 4),
                    "medical_trigger_share": r.medical_trigger_share, "serious_illness": bool(r.serious)},
        "monthly_amount": None, "person_ids": [],
    }


def _education(r: Any) -> dict[str, Any]:
    return {
        "zh": "建议给予教育救助", "en": "Consider education assistance (教育救助)",
        "rule_zh": f"低收入家庭，有{r.students}名在校学生",
        "rule_en": f"Low-income family with {r.students} student(s)",
        "figures": {"students": int(r.students), "per_capita_income_after_deduction":
                    _yuan(r.pc_income_after_deduction), "edge_line": _yuan(r.edge_line)},
        "monthly_amount": None, "person_ids": [],
    }


def _housing(r: Any) -> dict[str, Any]:
    collapsed = r.housing_damage == "collapsed"
    return {
        "zh": "建议给予住房救助（危房改造或灾后重建）",
        "en": "Consider housing assistance (repair or rebuilding)",
        "rule_zh": "近12个月房屋因灾" + ("倒塌" if collapsed else "严重损坏"),
        "rule_en": "The house " + ("collapsed" if collapsed else "was severely damaged")
                   + " in a disaster in the last 12 months",
        "figures": {"housing_damage": r.housing_damage}, "monthly_amount": None, "person_ids": [],
    }


RULES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "tekun": _tekun, "dibao": _dibao, "single_person": _single_person, "edge": _edge, "temporary": _temporary,
    "medical": _medical, "education": _education, "housing": _housing,
}
"""Programme -> sentence and figures maker, in the order recommendations are listed."""


def recommend(facts: pd.DataFrame) -> pd.Series:
    """The recommended programmes of each household (a list of dicts with programme, zh, en, rule_zh,
    rule_en, figures, monthly_amount in yuan/month for monthly programmes, person_ids)."""
    out: dict[str, list[dict[str, Any]]] = {h: [] for h in facts.index}
    fired = facts[list(RULES)].to_numpy(bool)
    qualifying = facts[fired.any(axis=1)]
    # One plain record per qualifying household (itertuples would build a namedtuple class per call).
    rows = {h: SimpleNamespace(Index=h, **values) for h, values in qualifying.to_dict("index").items()}
    for j, (programme, make) in enumerate(RULES.items()):
        for h in facts.index[fired[:, j]]:  # formatting only, for the qualifying rows
            out[h].append({"programme": programme, **make(rows[h])})
    return pd.Series([out[h] for h in facts.index], index=facts.index, dtype=object, name="recommendations")


def recommend_for(world: World, as_of: pd.Timestamp, features: pd.DataFrame, policy: PolicyConfig
                  ) -> pd.Series:
    """:func:`recommend` of :func:`household_facts`: the recommendations for the rows of ``features``."""
    return recommend(household_facts(world, as_of, features, policy))
