# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Explore the world
#
# What the data looks like before any model: how many households per county, who is in the cohort
# (not below the monitoring line, not on dibao or 特困), how often cohort households fall into hardship
# within six months (the label) by county and over time, why they fall, and how the groups of the
# fairness audit are made up. Everything comes from the `doudi` package: this notebook only looks.
#
# Parameters come from the environment so that the test suite can run it on a small world:
# `DOUDI_NB_HOUSEHOLDS`, `DOUDI_NB_MONTHS`, `DOUDI_NB_SEED`, or `DOUDI_NB_WORLD` (a world folder,
# loaded and validated with `doudi.validate.load_world`).

# %% tags=["parameters"]
import os
from pathlib import Path

HOUSEHOLDS = int(os.environ.get("DOUDI_NB_HOUSEHOLDS", "20000"))
MONTHS = int(os.environ.get("DOUDI_NB_MONTHS", "36"))
SEED = int(os.environ.get("DOUDI_NB_SEED", "7"))
WORLD_DIR = os.environ.get("DOUDI_NB_WORLD")
HORIZON = 6

# %%
import matplotlib.pyplot as plt
import pandas as pd

from doudi.labels import build_labels, cohort_frame, hardship_summary
from doudi.validate import load_world
from doudi.world import COUNTIES, generate_world
from features import build_features, encode_world
from monitoring.fairness import ATTRIBUTE_LABELS, household_groups

world = load_world(Path(WORLD_DIR)) if WORLD_DIR else generate_world(HOUSEHOLDS, MONTHS, seed=SEED)
pd.Series({name: len(frame) for name, frame in world.items()}, name="rows").to_frame()

# %% [markdown]
# ## Households by county

# %%
county_names = {county.code: county.name for county in COUNTIES}
households = world["households"].assign(county_code=world["households"]["village_code"].str.slice(0, 6))
by_county = pd.crosstab(households["county_code"], households["urban_rural"], margins=True,
                        margins_name="all")
by_county.index = [f"{code} {county_names.get(code, '')}".strip() for code in by_county.index]
by_county

# %% [markdown]
# ## The cohort and the label over time
# At each as-of date T the cohort is judged from records known before T; the label looks at what
# happened in (T, T + 6 months]. Dates run from the first month with a year of history to the last
# month whose label window the world still covers.

# %%
months = pd.PeriodIndex(world["income"]["month"].astype(str).unique(), freq="M").sort_values()
first, last = months[0] + 12, months[-1] - HORIZON + 1
dates = [period.to_timestamp() for period in pd.period_range(first, last, freq="M")][::3]
summary = hardship_summary(world, dates, horizon_months=HORIZON)
rates = summary.pivot(index="as_of", columns="county_code", values="base_rate")
cohorts = summary.pivot(index="as_of", columns="county_code", values="cohort")
fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
rates.drop(columns="all").plot(ax=left, marker="o", title="Base rate (6-month hardship) by county")
rates["all"].plot(ax=left, color="black", linewidth=3, label="all")
left.set(ylabel="share of the cohort", xlabel="as-of date")
left.legend(fontsize=8)
cohorts.drop(columns="all").plot(ax=right, marker="o", title="Cohort size by county")
right.set(xlabel="as-of date")
right.legend(fontsize=8)
plt.tight_layout()
rates.round(3)

# %% [markdown]
# ## Why households fall into hardship
# The label's reason is the first condition that fired in the window: trailing income below the
# monitoring line, a new dibao or 特困 spell, or temporary assistance.

# %%
as_of = dates[len(dates) // 2]
labels = build_labels(world, as_of, horizon_months=HORIZON)
reasons = labels["reason"].value_counts(dropna=True).rename("households").to_frame()
reasons["share of positives"] = reasons["households"] / labels["label"].sum()
status = cohort_frame(world, as_of)
print(f"As of {as_of.date()}: {len(status):,} households, {int(status['in_cohort'].sum()):,} in the cohort, "
      f"{int(labels['label'].sum()):,} fall into hardship within {HORIZON} months "
      f"({labels['label'].mean():.1%}).")
reasons

# %% [markdown]
# ## A few features, by outcome
# Features at T see only records known before T (the registry enforces it). Households that go on
# to fall into hardship already look different on the policy's own indicators.

# %%
frame = build_features(encode_world(world), as_of, households=labels.index)
shown = ["income_to_monitoring_line", "income_drop_3m_vs_12m", "medical_oop_share_12m", "disaster_loss_12m",
         "uninsured_job_loss_6m", "deposits_pc_to_dibao"]
frame[shown].join(labels["label"]).groupby("label").median().T.rename(
    columns={0: "median, label 0", 1: "median, label 1"})

# %% [markdown]
# ## The groups of the fairness audit
# The audit compares the model's errors across these groups (`monitoring.fairness`); here is how
# large each group is and how often its households fall into hardship.

# %%
groups = household_groups(world, as_of).reindex(labels.index).join(labels["label"])
rows = []
for attribute, label in ATTRIBUTE_LABELS.items():
    table = groups.groupby(attribute)["label"].agg(households="size", base_rate="mean")
    rows.append(table.reset_index(names="group").assign(attribute=label))
pd.concat(rows)[["attribute", "group", "households", "base_rate"]].round(3)
