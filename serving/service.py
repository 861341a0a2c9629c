"""The one scoring path, shared by the batch scorer (``doudi score``) and the API (``POST /v1/score``).

raw records -> ``features.build_features`` -> the pinned RiskModel (calibrated risk, tier) ->
``models.triggers.evaluate_triggers`` -> ranking -> which households are alerted -> explanations
(``serving.explain``) and recommended assistance (``serving.assistance``) for the rows a person will
see -> one transaction storing the run, every household's score and the alerts.

Ranking (deterministic, documented): risk descending, then the number of fired ranking triggers
descending, then a fixed hash of the household id (``pandas.util.hash_array``, SipHash with pandas'
fixed key) ascending. The hash breaks exact ties in an order unrelated to how ids were assigned (ids
often encode villages or registration dates) yet reproducible run after run.

Who is alerted: every cohort household with a tier (yellow and up) or a fired ranking trigger
(price linkage alone, which fires for a whole region at once, does not alert). Then:
  * open-case rule: a household whose previous alert is still open is not alerted again unless its
    tier rises (the new alert supersedes the old one);
  * ``top_per_township``: at most K tier-only alerts per township (visiting capacity), by rank;
    triggered households are always kept.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from doudi.arrowtext import python_strings, text_array
from doudi.frames import column_arrays, column_values, frame_of
from doudi.io import World
from doudi.policy import PolicyConfig
from features.snapshot import positions_in
from serving import store
from serving.champion import ServingModel
from serving.db import transaction
from serving.errors import Conflict
from serving.orm import utcnow

Progress = Callable[[int, int, str], None]
OnStore = Callable[[Session, "ScoredBatch"], None]
"""``on_store(session, batch)``: more writes in the run's own transaction (``batch.run_id`` is set)."""
"""``progress(done, total, step)``: called after each feature and each stage."""
STAGES = ("score", "triggers", "select alerts", "explain", "assistance", "store")
TIER_LEVEL = store.TIER_LEVEL
SCORE_COLUMNS = ("village_code", "township_code", "county_code", "in_cohort", "risk", "raw_score", "tier",
                 "n_triggers", "triggered", "rank", "alerted", "not_alerted_because", "supersedes",
                 "base_value", "reasons", "triggers", "recommendations", "contributions", "features")
"""The columns of ``ScoredBatch.scores``, in order."""
_SCORE_LABELS = pd.Index(SCORE_COLUMNS)
_DETAILS = SCORE_COLUMNS[SCORE_COLUMNS.index("base_value"):]
_NO_ALERT_IDS = pd.Series(dtype="int64")  # copied shallow (copy on write): building it costs ~0.1 ms a batch


@dataclass(frozen=True)
class ScoredBatch:
    """The outcome of one scoring.

    Attributes:
        scores: one row per scored household (index household_id), in rank order: village_code,
            township_code, county_code, in_cohort, risk, raw_score, tier, n_triggers, triggered, rank,
            alerted, not_alerted_because (``open_case`` / ``capped`` / ``not_in_cohort``), supersedes;
            for explained rows also base_value, reasons, triggers, recommendations, contributions,
            features (JSON-ready values).
        run_id: id of the stored run (None when not stored).
        alert_ids: new alert id per alerted household.
    """

    as_of: pd.Timestamp
    model_name: str
    model_version: str
    feature_version: str | None
    source: str
    scores: pd.DataFrame
    run_id: int | None = None
    alert_ids: pd.Series = field(default_factory=lambda: _NO_ALERT_IDS.copy(deep=False))

    @property
    def alerts(self) -> pd.DataFrame:
        """The alerted rows, in rank order."""
        rows = np.flatnonzero(self.scores["alerted"].to_numpy(bool))
        if not len(rows) or rows[-1] - rows[0] + 1 == len(rows):
            # One run of rows (the API's household, alerted or not) is a slice: taking rows costs ~1 ms
            # even for one, a slice a tenth. Copy on write: changing it leaves the scores as they are.
            return self.scores.iloc[rows[0]:rows[-1] + 1] if len(rows) else self.scores.iloc[:0]
        return self.scores.take(rows)


def rank_order(risk: np.ndarray, n_triggers: np.ndarray, household_ids: pd.Index) -> np.ndarray:
    """Positions in rank order: risk desc, fired triggers desc, household-id hash asc (see module doc).

    The hash is computed only for rows that tie on risk and triggers (hashing a million ids costs more
    than sorting them).
    """
    by_risk = -np.nan_to_num(np.asarray(risk, dtype=np.float64), nan=-np.inf)
    by_triggers = -np.asarray(n_triggers, dtype=np.float64)
    order = np.lexsort((by_triggers, by_risk))
    r, t = by_risk[order], by_triggers[order]
    same = (r[1:] == r[:-1]) & (t[1:] == t[:-1])
    if not same.any():
        return order
    tied = np.zeros(len(order), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    rows = order[tied]
    tie = np.zeros(len(by_risk), dtype=np.uint64)
    # Ids are unique: hashing them directly gives the same values as the default (which first factorizes
    # to hash duplicates once), seven times faster.
    tie[rows] = pd.util.hash_array(household_ids[rows].astype(str).to_numpy(dtype=object), categorize=False)
    return np.lexsort((tie, by_triggers, by_risk))


def _strings(values: pd.Series) -> np.ndarray:
    """A text column as Python strings (``astype(str)``), without a conversion when it holds them already."""
    strings = python_strings(values)
    return strings if strings is not None else values.astype(str).to_numpy(dtype=object)


def _plain(value: Any) -> Any:
    """A JSON-ready value: NaN, NA and NaT become None."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return value


def _objects(values: Any) -> np.ndarray:
    """A 1-d object array holding ``values`` as they are (numpy would turn lists of lists into 2-d)."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain JSON values (NaN and NA -> None)."""
    names = [str(name) for name in frame.columns]
    rows = frame.to_numpy(dtype=object, na_value=None).tolist()  # one pass, not pandas' per-row boxing
    return [dict(zip(names, (_plain(v) for v in row), strict=True)) for row in rows]


def fired_triggers(features: pd.DataFrame, fired: pd.DataFrame, policy: PolicyConfig) -> pd.Series:
    """Per row, the fired triggers as dicts: name, zh, en (the rule with the thresholds in force),
    source, ranks (whether it forces an alert), figures (the value of every feature it read, its gates'
    included: ``Trigger.features``)."""
    from models.triggers import TRIGGERS

    texts: dict[tuple[str, str], tuple[str, str]] = {}  # (trigger, county) -> (zh, en) with its rules
    counties = [""] * len(features)
    if "county_code" in features:
        county = features["county_code"]
        if not isinstance(county.dtype, pd.StringDtype):
            county = county.astype("string")
        counties = county.to_numpy(dtype=object, na_value="").tolist()
    out: list[list[dict[str, Any]]] = [[] for _ in range(len(features))]
    # Every column at once (the trigger columns are booleans): one conversion costs less than one column.
    flags, at = fired.to_numpy(dtype=bool), {name: i for i, name in enumerate(fired.columns.tolist())}
    for trigger in TRIGGERS:
        rows = np.flatnonzero(flags[:, at[trigger.name]])
        if not len(rows):
            continue
        columns = {name: features[name].to_numpy(np.float64, na_value=np.nan)[rows].tolist()
                   for name in trigger.features()}
        for k, i in enumerate(rows.tolist()):  # formatting only, fired rows
            key = (trigger.name, counties[i])
            if key not in texts:
                rules = policy.for_region(counties[i])
                texts[key] = (trigger.text(rules, "zh"), trigger.text(rules, "en"))
            figures = {name: (None if math.isnan(v[k]) else v[k]) for name, v in columns.items()}
            out[i].append({"name": trigger.name, "zh": texts[key][0], "en": texts[key][1],
                           "source": trigger.source, "ranks": trigger.ranks, "figures": figures})
    return pd.Series(out, index=features.index, dtype=object)


def select_alerts(scores: pd.DataFrame, open_cases: pd.DataFrame | None, *,
                  top_per_township: int | None = None) -> pd.DataFrame:
    """Decide who is alerted (see the module doc); ``scores`` must be in rank order.

    Adds the columns ``alerted``, ``not_alerted_because`` and ``supersedes``.
    """
    township = scores["township_code"].to_numpy(dtype=object) if top_per_township is not None else None
    alerted, reason, supersedes = _decide(
        scores.index, scores["tier"].to_numpy(dtype=object), scores["triggered"].to_numpy(bool),
        scores["in_cohort"].to_numpy(bool), township, open_cases, top_per_township)
    return scores.assign(alerted=alerted,
                         not_alerted_because=pd.Series(reason, index=scores.index, dtype=object),
                         supersedes=supersedes)


def _decide(household_ids: pd.Index, tier: np.ndarray, triggered: np.ndarray, in_cohort: np.ndarray,
            township: np.ndarray | None, open_cases: pd.DataFrame | None, top_per_township: int | None
            ) -> tuple[np.ndarray, np.ndarray, pd.api.extensions.ExtensionArray]:
    """:func:`select_alerts` on the columns (rank order): alerted, not_alerted_because and supersedes."""
    n = len(tier)
    candidate = in_cohort & ((tier != "none") | triggered)
    reason = np.full(n, None, dtype=object)
    reason[~in_cohort] = "not_in_cohort"
    # Row of each household's open case, -1 when none (one open case per household: a unique index).
    open_at = (positions_in(household_ids, open_cases.index) if open_cases is not None and len(open_cases)
               else np.full(n, -1, dtype=np.intp))
    has_open = open_at >= 0
    blocked = np.zeros(n, dtype=bool)
    if has_open.any():
        assert open_cases is not None
        open_tier = open_cases["tier"].to_numpy(dtype=object)[open_at[has_open]]
        level = np.array([TIER_LEVEL.get(t, -1) for t in tier[has_open]])
        open_level = np.array([TIER_LEVEL.get(t, -1) for t in open_tier])
        blocked[has_open] = candidate[has_open] & (level <= open_level)
    reason[blocked] = "open_case"
    alerted = candidate & ~blocked
    if top_per_township is not None:
        assert township is not None
        tier_only = alerted & ~triggered
        place = pd.Series(np.where(tier_only, township, None))
        order_in_township = place.groupby(place, dropna=True).cumcount().reindex(place.index).to_numpy()
        capped = tier_only & (order_in_township >= top_per_township)
        reason[capped] = "capped"
        alerted &= ~capped
    supersedes = np.zeros(n, dtype=np.int64)
    renewed = alerted & has_open
    if renewed.any():
        assert open_cases is not None
        supersedes[renewed] = open_cases["alert_id"].to_numpy(np.int64)[open_at[renewed]]
    return alerted, reason, pd.arrays.IntegerArray(supersedes, ~renewed)  # missing where not renewed


def score_world(
    world: World,
    as_of: pd.Timestamp,
    model: ServingModel,
    policy: PolicyConfig,
    *,
    households: pd.Index | None = None,
    sessions: sessionmaker[Session] | None = None,
    source: Literal["batch", "api"] = "batch",
    top_per_township: int | None = None,
    explain_all: bool = False,
    progress: Progress | None = None,
    on_store: OnStore | None = None,
) -> ScoredBatch:
    """Score households at ``as_of`` with the pinned model, decide the alerts, explain them, store the run.

    Args:
        world: validated contract world (records of every household to score, and region tables).
        as_of: T; only records known before T count.
        model: the pinned model.
        policy: policy configuration (triggers, assistance).
        households: who to score (default: the cohort at T, ``doudi.labels.cohort``); others in the
            world only serve as context. Households given but outside the cohort are scored and
            explained but never alerted.
        sessions: database sessions; when given, the open-case rule reads open alerts and the run is stored.
        source: ``batch`` or ``api`` (stored with the run).
        top_per_township: cap on tier-only alerts per township.
        explain_all: explain and advise every scored household (the API), not only the alerted ones.
        progress: progress callback.
        on_store: called in the transaction that stores the run (e.g. the API's audit row), so the run
            and what is written with it land together, with one commit.

    Raises:
        Conflict: another run alerted one of these households at the same moment (retry).
    """
    import features as feature_registry
    from doudi.labels import cohort
    from models.pyfunc import score_frame
    from models.triggers import evaluate_triggers
    from serving.assistance import recommend_for
    from serving.explain import explain

    started = utcnow()
    as_of = pd.Timestamp(as_of).normalize()
    total = len(feature_registry.REGISTRY) + len(STAGES)
    done = 0

    def step(name: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, name)

    in_cohort = cohort(world, as_of)
    ids = pd.Index(in_cohort if households is None else households, name="household_id").astype(str)
    encoded = feature_registry.encode_world(world, policy=policy)
    frame = feature_registry.build_features(
        encoded, as_of, households=ids, progress=lambda _d, _t, name: step(f"feature {name}"))
    risk_model = model.model
    matrix = risk_model.matrix(frame)  # built once: the explanation reads the same rows
    scored = score_frame(risk_model, frame, matrix=matrix)
    step("score")
    fired = evaluate_triggers(frame, policy)
    step("triggers")

    homes = world["households"]
    home_at = positions_in(ids, pd.Index(homes["household_id"], copy=False))
    if (home_at < 0).any():
        raise ValueError(f"households to score are not in the households table: {list(ids[home_at < 0][:5])}")
    model_out = column_arrays(scored, ("risk", "raw_score", "tier"))
    n_fired = column_values(column_arrays(fired, ("n_fired",))["n_fired"], np.int64)
    risk = column_values(model_out["risk"], np.float64)
    order = rank_order(risk, n_fired, ids)
    # Every column is an array in rank order until the one frame at the end: for the API's one household,
    # each frame built or column added costs more than the step that computes it.
    ranked = ids.take(order)
    village = _strings(homes["village_code"])[home_at[order]]
    tier = column_values(model_out["tier"], object)[order]
    triggered = n_fired[order] > 0
    in_cohort_mask = (np.ones(len(ids), dtype=bool) if households is None
                      else positions_in(ids, pd.Index(in_cohort, copy=False))[order] >= 0)
    township = np.array([code[:9] for code in village], dtype=object)

    open_cases = None
    candidates = ranked.to_numpy(dtype=object)[(tier != "none") | triggered].tolist()
    if sessions is not None and candidates:
        with sessions() as session:
            open_cases = store.open_cases(session, candidates)
    alerted, reason, supersedes = _decide(ranked, tier, triggered, in_cohort_mask, township, open_cases,
                                          top_per_township)
    step("select alerts")

    # Positions of the rows a person will see: in rank order, and in ``frame`` (``ids`` order).
    shown = np.arange(len(ids)) if explain_all else np.flatnonzero(alerted)
    at = order[shown]
    details = {column: np.full(len(ids), None, dtype=object) for column in _DETAILS}
    if len(shown):
        # Rows already in frame order (one household; a batch with nothing to reorder) are not taken again.
        in_order = len(at) == len(frame) and bool((at == np.arange(len(at))).all())
        shown_frame, shown_fired = (frame, fired) if in_order else (frame.iloc[at], fired.iloc[at])
        explained = explain(risk_model, shown_frame, matrix=matrix[at])
        details["base_value"][shown] = explained.base_values.astype(object)
        details["reasons"][shown] = explained.reason_lists
        details["contributions"][shown] = _objects(explained.contribution_records())
        details["triggers"][shown] = _objects(fired_triggers(shown_frame, shown_fired, policy))
        details["features"][shown] = _objects(_json_records(shown_frame))
    step("explain")
    if len(shown):
        details["recommendations"][shown] = _objects(recommend_for(world, as_of, shown_frame, policy))
    step("assistance")
    columns: dict[str, Any] = {
        "village_code": text_array(village),
        "township_code": text_array(township),
        "county_code": text_array([code[:6] for code in village]),
        "in_cohort": in_cohort_mask,
        "risk": risk[order],
        "raw_score": column_values(model_out["raw_score"], np.float64)[order],
        "tier": text_array(tier),
        "n_triggers": n_fired[order],
        "triggered": triggered,
        "rank": np.arange(1, len(ids) + 1, dtype=np.int64),
        "alerted": alerted,
        "not_alerted_because": reason,
        "supersedes": supersedes,
        **details,
    }
    # Typed as they are (text as pandas infers it, the rest numpy or nullable Int64): ``pd.DataFrame``
    # would infer and convert every column again.
    scores = frame_of(map(columns.__getitem__, SCORE_COLUMNS), ranked, _SCORE_LABELS)

    batch = ScoredBatch(as_of=as_of, model_name=model.name, model_version=model.version,
                        feature_version=feature_registry.REGISTRY_VERSION, source=source, scores=scores)
    if sessions is not None:
        from serving.profiles import household_profiles

        # De-identified summaries for the pages (issue 5): alerted households and those whose open case
        # kept them from being alerted again, stored in the run's transaction.
        seen = np.flatnonzero(alerted | (reason == "open_case"))
        profiles = household_profiles(world, as_of, ranked.take(seen))
        batch = _store(batch, sessions, started=started, top_per_township=top_per_township, profiles=profiles,
                       on_store=on_store)
    step("store")
    return batch


def _store(batch: ScoredBatch, sessions: sessionmaker[Session], *, started: dt.datetime,
           top_per_township: int | None, profiles: pd.DataFrame | None = None,
           on_store: OnStore | None = None) -> ScoredBatch:
    scores = batch.scores
    reasons = scores["not_alerted_because"].to_numpy(dtype=object)
    run = store.RunRecord(
        as_of=batch.as_of, source=batch.source, model_name=batch.model_name,
        model_version=batch.model_version,
        feature_version=batch.feature_version, started_at=started,
        params={"top_per_township": top_per_township}, n_open_case=int((reasons == "open_case").sum()),
        n_capped=int((reasons == "capped").sum()),
    )
    try:
        with transaction(sessions) as session:
            run_id, alert_ids = store.save_run(session, run, scores, batch.alerts)
            if profiles is not None:
                from serving.profiles import save_profiles

                save_profiles(session, profiles, batch.as_of)
            stored = replace(batch, run_id=run_id, alert_ids=alert_ids)
            if on_store is not None:
                on_store(session, stored)
    except IntegrityError as error:
        raise Conflict("another scoring run alerted some of these households at the same moment: "
                       "retry") from error
    return stored


def alerts_table(batch: ScoredBatch) -> pd.DataFrame:
    """The alerts of a batch as a flat table (for ``alerts.parquet``): one row per alert in rank order,
    the reasons and triggers as readable text and every nested field also as JSON text."""
    import json

    alerts = batch.alerts
    ids = batch.alert_ids.reindex(alerts.index)

    def joined(column: str, key: str, sep: str) -> list[str]:
        return [sep.join(str(item[key]) for item in (items or [])) for items in alerts[column]]

    def as_json(column: str) -> list[str]:
        return [json.dumps(items, ensure_ascii=False) for items in alerts[column]]

    return pd.DataFrame({
        "run_id": pd.array([batch.run_id] * len(alerts), dtype="Int64"),
        "alert_id": pd.array(ids.to_numpy(), dtype="Int64"),
        "household_id": pd.array(alerts.index, dtype="string"),
        "village_code": alerts["village_code"].astype("string").to_numpy(),
        "township_code": alerts["township_code"].astype("string").to_numpy(),
        "county_code": alerts["county_code"].astype("string").to_numpy(),
        "as_of": batch.as_of,
        "model_name": batch.model_name,
        "model_version": batch.model_version,
        "rank": alerts["rank"].to_numpy(np.int64),
        "risk": alerts["risk"].to_numpy(np.float64),
        "raw_score": alerts["raw_score"].to_numpy(np.float64),
        "tier": alerts["tier"].astype("string").to_numpy(),
        "triggered": alerts["triggered"].to_numpy(bool),
        "n_triggers": alerts["n_triggers"].to_numpy(np.int64),
        "reasons_zh": joined("reasons", "zh", "；"),
        "reasons_en": joined("reasons", "en", "; "),
        "triggers": joined("triggers", "name", ","),
        "programmes": joined("recommendations", "programme", ","),
        "reasons_json": as_json("reasons"),
        "triggers_json": as_json("triggers"),
        "recommendations_json": as_json("recommendations"),
    })


def county_summary(batch: ScoredBatch) -> pd.DataFrame:
    """Per county: households scored, alerts by tier, triggered alerts, and who was held back (open case,
    township cap)."""
    scores = batch.scores
    alerted = scores["alerted"].to_numpy(bool)
    frame = pd.DataFrame({
        "county_code": scores["county_code"].to_numpy(),
        "scored": 1,
        "alerts": alerted.astype(int),
        **{tier: (alerted & (scores["tier"] == tier).to_numpy()).astype(int)
           for tier in ("red", "orange", "yellow")},
        "triggered": (alerted & scores["triggered"].to_numpy(bool)).astype(int),
        "open_case": (scores["not_alerted_because"] == "open_case").to_numpy().astype(int),
        "capped": (scores["not_alerted_because"] == "capped").to_numpy().astype(int),
    })
    return frame.groupby("county_code", sort=True).sum()
