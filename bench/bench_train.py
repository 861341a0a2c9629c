"""Benchmark: training the relapse-risk models on N households x 12 monthly training snapshots.

Target (issue 3): 100k households x 12 snapshots trained in under 3 minutes on 2 cores. "Training" is
``models.train.fit_models``: the rule baseline, the logistic regression and LightGBM (early stopping on
the validation snapshot, calibration and tiers on the calibration snapshot). World generation,
snapshot building (features + labels, benchmarked by their owners too) and evaluation are timed and
shown but are not part of the target. A baseline size (10k) is measured in the same run, so the ratio
says how training scales on this machine today.

Layout (a valid rolling origin on a 36-month world): train T = 2023-07 .. 2024-06 (12 snapshots),
validation 2024-12, calibration 2025-01, test 2025-07 (lead-time lists 2025-07 .. 2025-12). Worlds are
generated in shards of at most ``--shard`` households (seeds seed, seed + 1, ...) and their snapshots
stacked: the training stage sees N households x 12 snapshots either way.

    .venv/bin/python bench/bench_train.py                 # 100k vs 10k
    .venv/bin/python bench/bench_train.py --households 20000 --baseline 5000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

TARGET_SECONDS = 180.0


def bench_config(threads: int):
    from models.config import TrainConfig, load_config

    data = load_config().model_dump(mode="json")
    data["train"] = {"start": "2023-07-01", "end": "2024-06-01", "step_months": 1}
    data["lightgbm"]["num_threads"] = threads
    return TrainConfig.model_validate(data)


def _sharded_splits(households: int, *, shard: int, months: int, seed: int, config):
    """Snapshots of ``households`` households built from worlds of at most ``shard`` households.

    Shard i is ``generate_world(size, months, seed + i)``; its household ids get the prefix ``s<i>-``.
    Features and labels are per household (plus region tables), so the stacked snapshots are those of
    one world with several groups of counties; it bounds memory and the generator's per-world size.
    """
    from dataclasses import replace

    import pandas as pd

    from doudi.world import generate_world
    from models.dataset import SPLITS, build_splits

    parts, generate_s, snapshots_s = [], 0.0, 0.0
    sizes = [min(shard, households - start) for start in range(0, households, shard)]
    for i, size in enumerate(sizes):
        start = time.perf_counter()
        world = generate_world(size, months, seed + i)
        generate_s += time.perf_counter() - start
        start = time.perf_counter()
        splits = build_splits(world, config)
        snapshots_s += time.perf_counter() - start
        names = (*SPLITS, "lead")
        prefix = f"s{i}-"
        parts.append({
            name: splits.frame(name).assign(household_id=prefix + splits.frame(name)["household_id"])
            for name in names
        })
    merged = {name: pd.concat([part[name] for part in parts], ignore_index=True) for name in names}
    return replace(splits, **merged), generate_s, snapshots_s


def measure(households: int, *, shard: int, months: int, seed: int, threads: int) -> dict[str, float]:
    """Seconds per stage for one size."""
    from models.dataset import feature_info
    from models.train import evaluate_models, fit_models

    config = bench_config(threads)
    out: dict[str, float] = {"households": float(households)}
    splits, out["generate_s"], out["snapshots_s"] = _sharded_splits(households, shard=shard, months=months,
                                                                   seed=seed, config=config)
    out["train_rows"] = float(len(splits.train))
    info = feature_info(config.features)
    start, cpu = time.perf_counter(), time.process_time()
    models = fit_models(splits, config, info)
    out["train_s"] = time.perf_counter() - start
    out["train_cpu_s"] = time.process_time() - cpu
    out["best_iteration"] = float(models["lightgbm"].best_iteration_)  # type: ignore[attr-defined]
    start = time.perf_counter()
    metrics, _ = evaluate_models(models, splits, config)
    out["evaluate_s"] = time.perf_counter() - start
    out["lightgbm_precision_at_5pct"] = metrics["lightgbm"]["precision_at_5pct"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads (the target is 2 cores).")
    parser.add_argument("--shard", type=int, default=25_000, help="Households per generated world.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    from doudi.settings import disable_telemetry

    disable_telemetry()
    console = Console()
    rows = []
    for size in (args.baseline, args.households):
        console.print(f"measuring {size:,} households x {args.months} months ...")
        rows.append(measure(size, shard=args.shard, months=args.months, seed=args.seed, threads=args.threads))
    base, big = rows
    table = Table(title=f"Training: {args.households:,} vs {args.baseline:,} households, 12 snapshots")
    table.add_column("stage")
    table.add_column(f"{args.baseline:,}", justify="right")
    table.add_column(f"{args.households:,}", justify="right")
    table.add_column("ratio", justify="right")
    for key in ("generate_s", "snapshots_s", "train_s", "train_cpu_s", "evaluate_s"):
        table.add_row(key.removesuffix("_s") + " (s)", f"{base[key]:.1f}", f"{big[key]:.1f}",
                      f"{big[key] / base[key]:.1f}x")
    table.add_row("training rows", f"{base['train_rows']:,.0f}", f"{big['train_rows']:,.0f}",
                  f"{big['train_rows'] / base['train_rows']:.1f}x")
    table.add_row("LightGBM best iteration", f"{base['best_iteration']:.0f}", f"{big['best_iteration']:.0f}",
                  "")
    table.add_row("LightGBM precision@5%", f"{base['lightgbm_precision_at_5pct']:.3f}",
                  f"{big['lightgbm_precision_at_5pct']:.3f}", "")
    console.print(table)
    verdict = "[green]within[/green]" if big["train_s"] < TARGET_SECONDS else "[red]over[/red]"
    console.print(f"training {big['train_s']:.1f} s: {verdict} the {TARGET_SECONDS:.0f} s target")
    if args.json is not None:
        args.json.write_text(json.dumps({"baseline": base, "target": big, "target_seconds": TARGET_SECONDS},
                                        indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
