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
# # 03 · Explain the champion
#
# What drives the champion's risk: a global SHAP summary, dependence plots of the strongest features,
# per-household waterfalls, and a check that the top reasons a social worker reads are sound Chinese
# sentences that state the actual values.
#
# The contributions are LightGBM's own TreeSHAP (`RiskModel.contributions`, what the service stores with
# each alert), in log-odds: base value plus contributions equals the raw score, not the probability.
# `shap` draws them, and computes them once more here to show both agree. Parameters come from the
# environment (see 01).

# %% tags=["parameters"]
import os
from pathlib import Path

HOUSEHOLDS = int(os.environ.get("DOUDI_NB_HOUSEHOLDS", "20000"))
MONTHS = int(os.environ.get("DOUDI_NB_MONTHS", "36"))
SEED = int(os.environ.get("DOUDI_NB_SEED", "7"))
WORLD_DIR = os.environ.get("DOUDI_NB_WORLD")
EXPLAINED_ROWS = 2000  # households drawn for the global plots
WATERFALLS = 3

# %%
import re

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shap

from doudi.labels import cohort
from doudi.settings import Settings, disable_telemetry
from doudi.validate import load_world
from doudi.world import generate_world
from features import REGISTRY, build_features, encode_world
from models.config import load_config
from models.train import train
from serving.champion import load_champion
from serving.errors import NotReady
from serving.explain import explain

disable_telemetry()
settings = Settings()
world = load_world(Path(WORLD_DIR)) if WORLD_DIR else generate_world(HOUSEHOLDS, MONTHS, seed=SEED)
try:
    champion = load_champion(settings)
except NotReady:  # a fresh data folder: train the default config first (it becomes the champion)
    train(world, load_config(), tracking_uri=settings.resolved_tracking_uri(), model_name=settings.model_name)
    champion = load_champion(settings)
model = champion.model
print(f"Explaining {champion.name} v{champion.version} ({len(model.features)} features)")

# %% [markdown]
# ## The households scored
# The cohort at the test period's as-of date, with the features the model saw (records known before T).

# %%
as_of = load_config().test.as_of_dates()[0]
households = cohort(world, as_of)
frame = build_features(encode_world(world), as_of, households=households)
X = frame[model.features]
risk = pd.Series(model.predict_proba(X), index=X.index, name="risk")
sample = X.sample(n=min(EXPLAINED_ROWS, len(X)), random_state=SEED)
print(f"As of {as_of.date()}: {len(X):,} cohort households; mean risk {risk.mean():.3f}; "
      f"{len(sample):,} drawn for the global plots")

# %% [markdown]
# ## SHAP values, and the check that shap and the model agree

# %%
contributions = model.contributions(sample)
base_value = contributions.pop("base_value")
explainer = shap.TreeExplainer(model.booster_)
# The model's own numeric encoding (categoricals as training category codes), the matrix predict uses.
matrix = model.matrix(sample)
values = explainer(matrix)
gap = np.abs(values.values - contributions.to_numpy()).max()
print(f"largest difference between shap and RiskModel.contributions: {gap:.2e} (log-odds)")
assert gap < 1e-6
explanation = shap.Explanation(values=contributions.to_numpy(), base_values=base_value.to_numpy(),
                               data=matrix, feature_names=list(model.features))

# %% [markdown]
# ## Global summary

# %%
shap.summary_plot(explanation, max_display=15, show=False)
plt.title("What moves the risk (log-odds), largest first")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Dependence of the strongest features
# Numeric features only; colour is the feature shap finds interacting most.

# %%
strength = pd.Series(np.abs(explanation.values).mean(axis=0), index=model.features)
strength = strength.sort_values(ascending=False)
numeric = [name for name in strength.index if REGISTRY[name].kind == "numeric"][:3]
shown = pd.DataFrame(matrix, index=sample.index, columns=model.features)
for name in numeric:
    shap.dependence_plot(name, explanation.values, shown, show=False)
    plt.title(f"{name}: {REGISTRY[name].description}"[:90])
    plt.tight_layout()
    plt.show()
strength.head(10).round(4).to_frame("mean |SHAP|")

# %% [markdown]
# ## Per-household waterfalls
# The riskiest households of the sample: from the base value (the average margin) to each one's raw
# score, feature by feature.

# %%
top = risk.reindex(sample.index).sort_values(ascending=False).index[:WATERFALLS]
for household in top:
    row = sample.index.get_loc(household)
    shap.plots.waterfall(explanation[row], max_display=10, show=False)
    plt.title(f"household {household}: risk {risk[household]:.1%}")
    plt.tight_layout()
    plt.show()

# %% [markdown]
# ## The top reasons, as a social worker reads them
# `serving.explain.explain` groups the contributions by feature family and words the strongest
# feature of each family that pushes risk up, with its actual value. Each sentence must be Chinese
# and must never show a raw feature name or a bare `nan`/`None`.

# %%
riskiest = risk.sort_values(ascending=False).index[:20]
reasons = explain(model, X.loc[riskiest]).reasons
rows = [{"household": household, "risk": round(float(risk[household]), 3), "rank": rank + 1,
         "group": reason["group"], "reason (zh)": reason["zh"], "reason (en)": reason["en"]}
        for household, items in reasons.items() for rank, reason in enumerate(items)]
table = pd.DataFrame(rows)
cjk = re.compile(r"[\u4e00-\u9fff]")
raw_name = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
problems = [text for text in table["reason (zh)"]
            if not cjk.search(text) or raw_name.search(text) or re.search(r"\bnan\b|None", text)]
print(f"{len(table)} reasons for the {len(riskiest)} riskiest households; "
      f"{table.groupby('household').size().max()} at most per household; problems: {len(problems)}")
assert not problems, problems
assert table.groupby("household").size().max() <= 4
table.head(20)
