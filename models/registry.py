"""Promotion: move the ``champion`` alias to the ``challenger`` only when it is not worse.

"Not worse" is judged on the SAME test period. Two ways to get the champion's numbers, tried in order:

1. At training time the challenger's run re-scored the then-champion on its own test data and logged
   ``champion.<metric>`` with tag ``doudi.champion_compared_version``; used when that version is still
   the champion. This is the normal case, and works even when the data moved on.
2. Otherwise, the champion run's own logged metrics, but only when both runs have the same test period
   and the same data fingerprint (the tags ``doudi.test_period`` and ``doudi.data_fingerprint``).

If neither holds, the models are not comparable and promotion is refused (``--force`` overrides).

Checks are a list of functions ``Evidence -> CheckResult``; the default list holds precision@5 % and
calibration (ECE). Later checks (the fairness audit) are added to :data:`DEFAULT_CHECKS` or passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

CHAMPION, CHALLENGER = "champion", "challenger"
PRECISION_METRIC = "precision_at_5pct"
CALIBRATION_METRIC = "ece"
PRECISION_TOLERANCE = 0.0
"""Precision@5 % of the challenger may not be below the champion's at all."""
ECE_TOLERANCE = 0.005
"""ECE may rise by at most half a point: at this size the ECE of two equally good models differs by noise."""


@dataclass(frozen=True)
class Evidence:
    """What the checks see: both versions' test metrics (``None`` when not comparable) and how."""

    challenger_version: str
    champion_version: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    basis: str


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    reason: str


PromotionCheck = Callable[[Evidence], CheckResult]


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of :func:`promote`."""

    promoted: bool
    forced: bool
    challenger_version: str | None
    champion_version: str | None
    checks: tuple[CheckResult, ...]
    reason: str


def _comparable(name: str, evidence: Evidence) -> CheckResult | None:
    if evidence.champion is None:
        return CheckResult(name, False, f"not comparable: {evidence.basis}")
    return None


def precision_not_worse(evidence: Evidence) -> CheckResult:
    """Challenger precision@5 % >= champion's (same test period)."""
    name = "precision@5%"
    refused = _comparable(name, evidence)
    if refused:
        return refused
    new = evidence.challenger.get(PRECISION_METRIC, float("nan"))
    old = evidence.champion.get(PRECISION_METRIC, float("nan"))  # type: ignore[union-attr]
    passed = bool(new >= old - PRECISION_TOLERANCE)
    return CheckResult(name, passed, f"challenger {new:.4f} vs champion {old:.4f}"
                       + ("" if passed else ": challenger finds fewer true cases at 5 % capacity"))


def calibration_not_worse(evidence: Evidence) -> CheckResult:
    """Challenger ECE <= champion's + tolerance (same test period)."""
    name = "calibration (ECE)"
    refused = _comparable(name, evidence)
    if refused:
        return refused
    new = evidence.challenger.get(CALIBRATION_METRIC, float("nan"))
    old = evidence.champion.get(CALIBRATION_METRIC, float("nan"))  # type: ignore[union-attr]
    passed = bool(new <= old + ECE_TOLERANCE)
    return CheckResult(name, passed, f"challenger {new:.4f} vs champion {old:.4f} (tolerance {ECE_TOLERANCE})"
                       + ("" if passed else ": challenger probabilities are less reliable"))


def fairness_not_worse(evidence: Evidence) -> CheckResult:
    """The challenger flags no fairness group the champion does not (``monitoring.fairness``)."""
    from monitoring.fairness import no_new_flagged_group

    return no_new_flagged_group(evidence)


DEFAULT_CHECKS: tuple[PromotionCheck, ...] = (precision_not_worse, calibration_not_worse, fairness_not_worse)


def _alias(client: Any, model_name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def _prefixed(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k[len(prefix):]: v for k, v in metrics.items() if k.startswith(prefix) and ".county." not in k}


def gather_evidence(client: Any, model_name: str, challenger: Any, champion: Any) -> Evidence:
    """Both versions' metrics on the same test period (see the module docstring)."""
    run = client.get_run(challenger.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    mine = _prefixed(metrics, "lightgbm.")
    if tags.get("doudi.champion_compared_version") == str(champion.version):
        return Evidence(str(challenger.version), str(champion.version), mine, _prefixed(metrics, "champion."),
                        f"champion v{champion.version} re-scored on the challenger's test data")
    old = client.get_run(champion.run_id)
    keys = ("doudi.test_period", "doudi.data_fingerprint")
    if all(tags.get(k) and tags.get(k) == old.data.tags.get(k) for k in keys):
        return Evidence(str(challenger.version), str(champion.version), mine,
                        _prefixed(old.data.metrics, "lightgbm."),
                        "logged metrics on the same test period and data")
    return Evidence(str(challenger.version), str(champion.version), mine, None,
                    f"v{challenger.version} was not evaluated against champion v{champion.version}, and "
                    f"their test periods or data differ ({tags.get('doudi.test_period')} vs "
                    f"{old.data.tags.get('doudi.test_period')}); retrain to compare")


def promote(
    client: Any,
    *,
    force: bool = False,
    model_name: str = "doudi-relapse-risk",
    checks: Sequence[PromotionCheck] = DEFAULT_CHECKS,
) -> PromotionDecision:
    """Move ``champion`` to the ``challenger`` version if every check passes (or ``force``).

    Args:
        client: an ``mlflow.tracking.MlflowClient`` on the registry.
        force: promote even when checks fail (an administrator's decision; the checks are still reported).
        model_name: registered model name.
        checks: functions judging the evidence; all must pass.

    Raises:
        LookupError: the model or its ``challenger`` alias does not exist.
    """
    challenger = _alias(client, model_name, CHALLENGER)
    if challenger is None:
        raise LookupError(
            f"registered model {model_name!r} has no {CHALLENGER!r} version: run `doudi train` first"
        )
    champion = _alias(client, model_name, CHAMPION)
    if champion is None:
        client.set_registered_model_alias(model_name, CHAMPION, challenger.version)
        return PromotionDecision(True, force, str(challenger.version), None, (), "there was no champion")
    if str(champion.version) == str(challenger.version):
        return PromotionDecision(False, force, str(challenger.version), str(champion.version), (),
                                 f"v{challenger.version} is already the champion")
    evidence = gather_evidence(client, model_name, challenger, champion)
    results = tuple(check(evidence) for check in checks)
    passed = all(r.passed for r in results)
    if passed or force:
        client.set_registered_model_alias(model_name, CHAMPION, challenger.version)
        reason = "all checks passed" if passed else "checks failed; promoted by --force"
        return PromotionDecision(True, force and not passed, str(challenger.version), str(champion.version),
                                 results, reason)
    failed = "; ".join(f"{r.name}: {r.reason}" for r in results if not r.passed)
    return PromotionDecision(False, False, str(challenger.version), str(champion.version), results,
                             f"refused: {failed}")
