"""Benchmark: generating the synthetic world (``doudi.world.generate_world``) at several sizes.

Target (issue 2): 100k households x 36 months in under 60 s on this 2-core machine. Each size runs in
a fresh subprocess, so its peak memory (the process's maximum resident set size) is its own; the
first size is the baseline of the ratios, measured in the same run. Writing Parquet is timed apart
(``--write``), since the target is about the simulation.

    .venv/bin/python bench/bench_generate.py                         # 10k, 50k, 100k x 36 months
    .venv/bin/python bench/bench_generate.py --sizes 2000 20000 --write
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time

TARGET_SECONDS = 60.0
TARGET_HOUSEHOLDS = 100_000

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from doudi.world import generate_world
households, months, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start = time.perf_counter()
world = generate_world(households, months, seed)
seconds = time.perf_counter() - start
write = None
if out:
    from doudi.io import write_world
    start = time.perf_counter()
    write_world(world, Path(out))
    write = time.perf_counter() - start
rows = {name: len(frame) for name, frame in world.items()}
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "write": write, "rows": rows, "peak_mb": peak_mb}))
"""


def run_one(households: int, months: int, seed: int, *, write: bool) -> dict:
    """Generate one world in a subprocess; its timing, row counts and peak memory."""
    with tempfile.TemporaryDirectory() as directory:
        command = [sys.executable, "-c", _CHILD, str(households), str(months), str(seed),
                   directory if write else ""]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"generating {households} households failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000],
                        help="Household counts; the first is the baseline.")
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", action="store_true", help="Also time writing Parquet.")
    parser.add_argument("--json", help="Write the results to this JSON file.")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    results = []
    started = time.perf_counter()
    for households in args.sizes:
        console.print(f"generating {households:,} households x {args.months} months …")
        result = run_one(households, args.months, args.seed, write=args.write)
        result["households"] = households
        results.append(result)
    base = results[0]
    table = Table(title=f"doudi generate_world, {args.months} months, seed {args.seed} "
                        f"(ratios vs {base['households']:,} households)")
    columns = ("households", "seconds", "rows", "rows/s", "peak MB", "time ratio", "time ratio / size ratio")
    for name in columns:
        table.add_column(name, justify="right")
    if args.write:
        table.add_column("write Parquet s", justify="right")
    for result in results:
        rows = sum(result["rows"].values())
        size_ratio = result["households"] / base["households"]
        time_ratio = result["seconds"] / base["seconds"]
        cells = [f"{result['households']:,}", f"{result['seconds']:.1f}", f"{rows:,}",
                 f"{rows / result['seconds']:,.0f}", f"{result['peak_mb']:,.0f}", f"{time_ratio:.2f}",
                 f"{time_ratio / size_ratio:.2f}"]
        if args.write:
            cells.append(f"{result['write']:.1f}")
        table.add_row(*cells)
    console.print(table)
    biggest = results[-1]
    console.print("rows per table at the largest size: " + ", ".join(
        f"{name} {count:,}" for name, count in biggest["rows"].items()))
    at_target = [r for r in results if r["households"] == TARGET_HOUSEHOLDS and args.months == 36]
    if at_target:
        seconds = at_target[0]["seconds"]
        verdict = "meets" if seconds < TARGET_SECONDS else "MISSES"
        console.print(f"{TARGET_HOUSEHOLDS:,} x 36 months: {seconds:.1f} s — {verdict} the "
                      f"{TARGET_SECONDS:.0f} s target")
    console.print(f"benchmark wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
