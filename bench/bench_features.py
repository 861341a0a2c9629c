"""Benchmark: point-in-time features for N households x 36 months (issue 2, section 7).

Targets on this 2-core machine: one as-of date for 100k households in under 20 s and 4 GB peak memory;
a training set of 12 monthly as-of dates in under 2 minutes. A baseline size (10k households) is
measured in the same run, so the ratios say how the build scales on the machine as it is today.

Wall and CPU time are both shown: on a shared machine the wall time stretches with the load average.
Each size runs in a fresh process (peak memory is that process's, world included): the world is
generated (``doudi.world.generate_world``, else the test factories' random world), written to Parquet,
and read back as ``doudi validate``/``load_world`` would hand it over. Timed:

* one as-of date: ``build_features(world, T)`` for every household (encoding the world included);
* training set: ``encode_world`` once, then ``build_features`` at 12 monthly as-of dates (every
  household, an upper bound for the cohort).

    .venv/bin/python bench/bench_features.py                       # 100k vs 10k
    .venv/bin/python bench/bench_features.py --households 20000 --baseline 2000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: `features` and the test factories import from here
    sys.path.insert(0, str(ROOT))

TARGET_ONE_DATE_S = 20.0
TARGET_PEAK_GB = 4.0
TARGET_TRAINING_S = 120.0
AS_OF = "2025-07-01"
TRAINING_DATES = [f"{year}-{month:02d}-01" for year, month in
                  [(2024, m) for m in range(7, 13)] + [(2025, m) for m in range(1, 7)]]


_ID_COLUMNS = ("household_id", "person_id", "claim_id", "disaster_id", "loss_id", "event_id", "assistance_id",
               "id_hash")


def stacked_world(households: int, months: int, seed: int, *, shard: int):
    """``doudi.world.generate_world`` in shards of at most ``shard`` households, stacked into one world.

    Shard i is ``generate_world(size, months, seed + i)``; its ids get the prefix ``s<i>-``. Regions are
    united and each standards row is taken from the first shard that has it. (The generator refuses
    very large worlds today; stacking keeps the row counts and the shape of a real county's data.)
    """
    import pandas as pd

    from doudi.contract import TABLES
    from doudi.world import generate_world

    shards = []
    for number, start in enumerate(range(0, households, shard)):
        world = generate_world(min(shard, households - start), months, seed + number)
        for name, frame in world.items():
            if name in ("regions", "standards"):
                continue
            renamed = {c: "s" + str(number) + "-" + frame[c].astype("string")
                       for c in _ID_COLUMNS if c in frame}
            world[name] = frame.assign(**renamed)
        shards.append(world)
    stacked = {name: pd.concat([w[name] for w in shards if name in w], ignore_index=True)
               for name in TABLES if any(name in w for w in shards)}
    stacked["regions"] = stacked["regions"].drop_duplicates("region_code", ignore_index=True)
    stacked["standards"] = stacked["standards"].drop_duplicates(list(TABLES["standards"].primary_key),
                                                                ignore_index=True)
    return stacked, len(shards)


def write_world(households: int, months: int, seed: int, directory: Path, *, generator: str,
                shard: int) -> str:
    """Generate a world and write it as Parquet; returns which generator made it.

    ``generator`` "world" uses ``doudi.world.generate_world`` (in shards, see :func:`stacked_world`;
    the test factories when that module is absent), "factories" the seeded random world of
    ``tests/factories.py``.
    """
    from doudi.io import write_world as write

    world = None
    if generator == "world":
        try:
            import doudi.world  # noqa: F401
        except ImportError:
            pass
        else:
            world, shards = stacked_world(households, months, seed, shard=shard)
            source = "doudi.world.generate_world" + (f", {shards} shards" if shards > 1 else "")
    if world is None:
        sys.path.insert(0, str(ROOT / "tests"))
        from factories import random_world

        world, source = random_world(households, months, seed), "tests/factories.random_world"
    write(world, directory)
    return source


def _rss_gb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def measure(directory: str, results) -> None:
    """Child process: read the world, time one as-of date and the 12-date training set."""
    import pandas as pd

    from doudi.contract import TABLES
    from features import build_features, encode_world

    world = {name: pd.read_parquet(Path(directory) / f"{name}.parquet") for name in TABLES
             if (Path(directory) / f"{name}.parquet").exists()}
    out: dict[str, float] = {"income_rows": float(len(world["income"])), "loaded_gb": _rss_gb()}
    start, cpu = time.perf_counter(), time.process_time()
    frame = build_features(world, AS_OF)
    out["one_date_s"] = time.perf_counter() - start
    out["one_date_cpu_s"] = time.process_time() - cpu
    out["one_date_peak_gb"] = _peak_gb()
    out["rows"] = float(len(frame))
    out["columns"] = float(frame.shape[1])
    del frame
    start, cpu = time.perf_counter(), time.process_time()
    encoded = encode_world(world)
    out["encode_s"] = time.perf_counter() - start
    rows = 0
    for as_of in TRAINING_DATES:
        rows += len(build_features(encoded, as_of))
    out["training_s"] = time.perf_counter() - start
    out["training_cpu_s"] = time.process_time() - cpu
    out["training_rows"] = float(rows)
    out["peak_gb"] = _peak_gb()
    results.put(out)


def run(households: int, *, months: int, seed: int, generator: str, shard: int) -> dict[str, float | str]:
    """Generate, write and measure one world size in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="doudi-bench-features-") as directory:
        start = time.perf_counter()
        source = write_world(households, months, seed, Path(directory), generator=generator, shard=shard)
        generate_s = time.perf_counter() - start
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        child = context.Process(target=measure, args=(directory, results))
        child.start()
        out = results.get()
        child.join()
    return {"households": households, "generator": source, "generate_s": generate_s, **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--generator", choices=("world", "factories"), default="world",
                        help="doudi.world.generate_world (default) or the test factories' random world.")
    parser.add_argument("--shard", type=int, default=25_000,
                        help="Households per generate_world call; larger worlds are stacked shards.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows = []
    for households in (args.baseline, args.households):
        with console.status(f"{households:,} households x {args.months} months"):
            rows.append(run(households, months=args.months, seed=args.seed, generator=args.generator,
                            shard=args.shard))
    base, big = rows
    scale = big["households"] / base["households"]

    table = Table(title=f"Features: {big['households']:,} vs {base['households']:,} households x "
                        f"{args.months} months ({big['generator']})", title_justify="left")
    for name in ("measure", f"{base['households']:,}", f"{big['households']:,}", "ratio", "target", ""):
        table.add_column(name, justify="left" if name == "measure" else "right")

    def line(label: str, key: str, unit: str, target: float | None = None) -> None:
        ratio = big[key] / base[key] if base[key] else float("nan")
        ok = "" if target is None else ("[green]ok[/green]" if big[key] < target else "[red]over[/red]")
        table.add_row(label, f"{base[key]:.1f} {unit}", f"{big[key]:.1f} {unit}", f"{ratio:.1f}x",
                      "" if target is None else f"< {target:g} {unit}", ok)

    table.add_row("income rows", f"{base['income_rows']:,.0f}", f"{big['income_rows']:,.0f}",
                  f"{big['income_rows'] / base['income_rows']:.1f}x", "", "")
    line("one as-of date (encode + build)", "one_date_s", "s", TARGET_ONE_DATE_S)
    line("  CPU time (all threads)", "one_date_cpu_s", "s")
    line("peak memory, one date (world incl.)", "one_date_peak_gb", "GB", TARGET_PEAK_GB)
    line("world in memory", "loaded_gb", "GB")
    line("12 as-of dates: encode once", "encode_s", "s")
    line("12 as-of dates: total", "training_s", "s", TARGET_TRAINING_S)
    line("  CPU time (all threads)", "training_cpu_s", "s")
    line("peak memory, training set", "peak_gb", "GB")
    line("world generation (not timed)", "generate_s", "s")
    console.print(table)
    console.print(f"{int(big['columns'])} features; households scale {scale:.0f}x; "
                  f"{big['training_rows']:,.0f} household-dates in the training set; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times stretch "
                  "when the machine is shared).")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
