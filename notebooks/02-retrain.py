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
# # 02 · Retrain and compare with the champion
#
# Train a challenger with changed parameters or features, compare it with the champion **on the same
# test period**, look at its fairness by group, and register it (alias `challenger`). Promotion stays a
# separate, deliberate step: `doudi promote` (its checks are previewed at the end, nothing is moved here).
#
# Everything goes through `models.train.train`, the same code as `doudi train`: snapshots, rolling-origin
# splits, the three models, MLflow logging (tracking store from `DOUDI_DATA_DIR` or `MLFLOW_TRACKING_URI`).
# Parameters come from the environment (see 01).

# %% tags=["parameters"]
import os
from pathlib import Path

HOUSEHOLDS = int(os.environ.get("DOUDI_NB_HOUSEHOLDS", "20000"))
MONTHS = int(os.environ.get("DOUDI_NB_MONTHS", "36"))
SEED = int(os.environ.get("DOUDI_NB_SEED", "7"))
WORLD_DIR = os.environ.get("DOUDI_NB_WORLD")
DROPPED_FAMILY = "assets"  # the challenger is trained without this feature family

# %%
import pandas as pd
from IPython.display import Markdown, display
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from doudi.settings import Settings, disable_telemetry
from doudi.validate import load_world
from doudi.world import generate_world
from features import REGISTRY
from models.config import TrainConfig, load_config
from models.registry import DEFAULT_CHECKS, gather_evidence
from models.train import train
from monitoring.config import load_config as load_monitoring_config
from monitoring.fairness import flagged_groups, markdown
from monitoring.training import test_period_audit

disable_telemetry()
settings = Settings()
uri = settings.resolved_tracking_uri()
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
world = load_world(Path(WORLD_DIR)) if WORLD_DIR else generate_world(HOUSEHOLDS, MONTHS, seed=SEED)
print(f"MLflow: {uri}")

# %% [markdown]
# ## The champion
# A fresh data folder has no model yet: then the default config is trained first and becomes the
# champion (the first version ever is champion), as `doudi train` would do.

# %%
def champion_version():
    try:
        return client.get_model_version_by_alias(settings.model_name, "champion")
    except MlflowException:
        return None


if champion_version() is None:
    first = train(world, load_config(), tracking_uri=uri, model_name=settings.model_name)
    aliases = ", ".join(first.aliases)
    print(f"No champion yet: trained the default config as v{first.model_version} ({aliases})")
champion = champion_version()
print(f"Champion: {settings.model_name} v{champion.version}")

# %% [markdown]
# ## The challenger: changed parameters and features
# Same periods as the default config (so the comparison is on the same test period), smaller trees,
# a faster learning rate, and without the assets family.

# %%
base = load_config().model_dump(mode="json")
base["lightgbm"].update(num_leaves=15, learning_rate=0.08, min_data_in_leaf=60)
base["features"] = [name for name, spec in REGISTRY.items() if spec.group != DROPPED_FAMILY]
challenger_config = TrainConfig.model_validate(base)
print(f"{len(challenger_config.features)} features (without {DROPPED_FAMILY}); "
      f"config {challenger_config.config_hash()[:12]}")
result = train(world, challenger_config, tracking_uri=uri, model_name=settings.model_name)
print(f"Registered v{result.model_version} as {', '.join(result.aliases)}; MLflow run {result.run_id}")
result.splits_table

# %% [markdown]
# ## Challenger vs champion on the same test period
# At training time the champion was re-scored on this run's test data (`champion_metrics`), so both
# columns describe the same households at the same dates.

# %%
shown = ["roc_auc", "pr_auc", "precision_at_1pct", "precision_at_5pct", "recall_at_5pct", "brier", "ece",
         "caught_before_event_share", "lead_time_median_months"]
comparison = pd.DataFrame({
    "rule baseline": result.metrics["rules"],
    "logistic": result.metrics["logistic"],
    f"challenger v{result.model_version}": result.metrics["lightgbm"],
    f"champion v{champion.version}": result.champion_metrics or {},
}).reindex(shown)
comparison.round(4)

# %% [markdown]
# ## Fairness of the challenger
# The audit of the test period (alerted = top 5 % of each monthly list), as in the model card: size,
# alert rate, precision, false-negative and false-positive rates with intervals, and the FNR ratio to
# the largest group.

# %%
monitoring_config = load_monitoring_config()
audit = test_period_audit(result.models["lightgbm"], result.splits, seed=challenger_config.tie_break_seed)
display(Markdown(markdown(audit, config=monitoring_config.fairness, title="Challenger")))
print("flagged:", flagged_groups(audit) or "none")

# %% [markdown]
# ## What `doudi promote` would decide
# The promotion checks (precision@5 %, calibration, no new flagged group) on the evidence MLflow holds.
# Nothing is promoted here.

# %%
challenger = client.get_model_version_by_alias(settings.model_name, "challenger")
if str(challenger.version) == str(champion.version):
    print("The challenger is the champion (first model): nothing to compare.")
else:
    evidence = gather_evidence(client, settings.model_name, challenger, champion)
    checks = pd.DataFrame([vars(check(evidence)) for check in DEFAULT_CHECKS]).set_index("name")
    display(checks)
