"""Benchmark: the scoring service, single household over HTTP and batch scoring + explanation.

Targets (issue 4), each measured with its reference in the same run:

* single household with 36 months of records, ``POST /v1/score`` over HTTP on loopback (parse ->
  features -> champion model -> tier -> explanation -> triggers -> assistance -> stored run): p50 and
  p99 latency, target p99 < 50 ms; reference: the same model's bare prediction from precomputed
  features through MLflow's own pyfunc scoring server (``mlflow models serve``, loopback).
* batch: 1M households scored from precomputed features (model, tier, triggers, ranking, alert
  selection), target >= 100k households/s; the alerted households explained with the model's TreeSHAP
  (``serving.explain``), throughput against ``shap.TreeExplainer`` on the same rows.

The world comes from ``doudi.world.generate_world`` and the model from ``models.train.train`` (both
timed but not part of the targets); both servers run as subprocesses on 127.0.0.1 and are stopped by
the bench. Requests are sequential (one client), bounded in count.

    .venv/bin/python bench/bench_serving.py
    .venv/bin/python bench/bench_serving.py --households 2000 --requests 200 --batch-rows 200000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
AS_OF = pd.Timestamp("2026-01-01")
P99_TARGET_MS = 50.0
BATCH_TARGET = 100_000.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(args, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _wait(client: Any, path: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if client.get(path).status_code == 200:
                return
        except Exception:  # noqa: BLE001 - not listening yet
            pass
        time.sleep(0.25)
    raise TimeoutError(f"server not ready after {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def _latencies(client: Any, path: str, body: bytes, headers: dict[str, str], *, requests: int,
               warmup: int) -> np.ndarray:
    # This process holds the world, the trained model and their libraries: without freezing them, its own
    # garbage collector walks them every ~100 requests and adds its pause to the request being timed.
    gc.collect()
    gc.freeze()
    times = []
    for i in range(warmup + requests):
        start = time.perf_counter()
        response = client.post(path, content=body, headers=headers)
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}: {response.text[:500]}")
        if i >= warmup:
            times.append(elapsed * 1000)
    return np.asarray(times)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.drop(columns=[c for c in ("id_number",) if c in frame]).copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].dt.strftime("%Y-%m-%d")
    rows = json.loads(out.to_json(orient="records", force_ascii=False))
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def household_payload(world: dict[str, pd.DataFrame], household_id: str) -> dict[str, Any]:
    """A score request for one household: its row and every record, in contract names."""
    from serving.schemas import HOUSEHOLD_TABLES

    item: dict[str, Any] = {}
    homes = world["households"]
    item["household"] = _rows(homes[homes["household_id"] == household_id])[0]
    for name in HOUSEHOLD_TABLES:
        frame = world[name]
        item[name] = _rows(frame[frame["household_id"] == household_id])
    return {"as_of": AS_OF.strftime("%Y-%m-%d"), "households": [item]}


def single_household(world: dict[str, pd.DataFrame], world_dir: Path, work: Path, uri: str, version: str,
                     *, requests: int, warmup: int) -> dict[str, float]:
    """p50/p99 of POST /v1/score (doudi) and of /invocations (MLflow pyfunc server) for one household."""
    import httpx

    import features
    from doudi.labels import cohort
    from models.pyfunc import input_frame
    from serving.auth import add_user
    from serving.db import make_engine, session_factory, transaction, upgrade

    members = cohort(world, AS_OF)
    income = world["income"]
    months = income[income["household_id"].isin(members)].groupby("household_id")["month"].nunique()
    household = str(months.sort_values(ascending=False, kind="stable").index[0])
    payload = household_payload(world, household)
    body = json.dumps(payload, ensure_ascii=False).encode()
    records = {name: len(rows) for name, rows in payload["households"][0].items() if isinstance(rows, list)}

    data = work / "data"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(DOUDI_DATA_DIR=str(data), DOUDI_MLFLOW_TRACKING_URI=uri, MLFLOW_TRACKING_URI=uri,
               DOUDI_ID_HMAC_KEY=secrets.token_hex(32), MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true",
               PYTHONPATH=str(REPO),
               # `mlflow models serve` starts `uvicorn` from PATH: the venv's own.
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    engine = make_engine(f"sqlite:///{(data / 'doudi.db').resolve()}")
    upgrade(engine)
    with transaction(session_factory(engine)) as session:
        token = add_user(session, "bench-platform", "platform", region_codes=["53"])[1]
    engine.dispose()

    out: dict[str, float] = {"months_of_income": float(months[household]),
                             "records": float(sum(records.values()))}
    port = _free_port()
    log = work / "doudi-serve.log"
    doudi = _start([sys.executable, "-c", "from doudi.cli import app; app()", "serve", "--port", str(port),
                    "--reference", str(world_dir)], env, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            _wait(client, "/readyz", doudi, log)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            times = _latencies(client, "/v1/score", body, headers, requests=requests, warmup=warmup)
    finally:
        _stop(doudi)
    out.update(doudi_p50_ms=float(np.percentile(times, 50)), doudi_p99_ms=float(np.percentile(times, 99)),
               doudi_mean_ms=float(times.mean()))

    from models.train import load_registered

    model = load_registered(f"models:/doudi-relapse-risk/{version}", work / "pyfunc-model")
    frame = features.build_features(world, AS_OF, households=pd.Index([household]))
    row = input_frame(model, frame).reset_index(drop=True)
    split = json.loads(row.to_json(orient="split", index=False))
    invocation = json.dumps({"dataframe_split": {"columns": split["columns"],
                                                 "data": split["data"]}}).encode()
    port = _free_port()
    log = work / "mlflow-serve.log"
    server = _start([sys.executable, "-m", "mlflow", "models", "serve",
                     "-m", f"models:/doudi-relapse-risk/{version}", "-h", "127.0.0.1", "-p", str(port),
                     "--env-manager", "local", "-w", "1"], env, log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            _wait(client, "/ping", server, log)
            times = _latencies(client, "/invocations", invocation, {"Content-Type": "application/json"},
                               requests=requests, warmup=warmup)
    finally:
        _stop(server)
    out.update(mlflow_p50_ms=float(np.percentile(times, 50)), mlflow_p99_ms=float(np.percentile(times, 99)))
    return out


def batch(world: dict[str, pd.DataFrame], model: Any, *, rows: int, explain_rows: int, seed: int
          ) -> dict[str, float]:
    """Score ``rows`` households from precomputed features; explain the alerted ones; compare with shap."""
    import shap

    import features
    from doudi.labels import cohort
    from doudi.policy import load_policy
    from models.pyfunc import score_frame
    from models.triggers import evaluate_triggers
    from serving.explain import explain
    from serving.service import rank_order, select_alerts

    policy = load_policy()
    ids = cohort(world, AS_OF)
    base = features.build_features(world, AS_OF, households=ids)
    villages = world["households"].set_index("household_id")["village_code"].astype(str).reindex(ids)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(base), rows)
    frame = base.iloc[pick].reset_index(drop=True)
    frame.index = pd.Index([f"B{i:07d}" for i in range(rows)], name="household_id")
    village = villages.to_numpy()[pick]

    start = time.perf_counter()
    scored = score_frame(model, frame[model.features])
    t_model = time.perf_counter()
    fired = evaluate_triggers(frame, policy)
    t_triggers = time.perf_counter()
    order = rank_order(scored["risk"].to_numpy(), fired["n_fired"].to_numpy(), frame.index)
    scores = pd.DataFrame({
        "township_code": pd.Series(village).str.slice(0, 9).to_numpy(), "in_cohort": True,
        "risk": scored["risk"].to_numpy(), "tier": scored["tier"].astype(str).to_numpy(),
        "triggered": fired["n_fired"].to_numpy() > 0,
    }, index=frame.index).iloc[order]
    scores["rank"] = np.arange(1, rows + 1)
    empty = pd.DataFrame({"alert_id": pd.Series(dtype="int64"), "tier": pd.Series(dtype=object)})
    selected = select_alerts(scores, empty)
    end = time.perf_counter()
    alerted = selected.index[selected["alerted"].to_numpy(bool)]

    sample = frame.loc[alerted[:explain_rows], model.features]
    t0 = time.perf_counter()
    explain(model, sample)
    t1 = time.perf_counter()
    shap.TreeExplainer(model.booster_).shap_values(model.matrix(sample))
    t2 = time.perf_counter()
    return {
        "rows": float(rows), "trees": float(model.booster_.num_trees()), "alerted": float(len(alerted)),
        "model_s": t_model - start, "triggers_s": t_triggers - t_model, "rank_select_s": end - t_triggers,
        "score_total_s": end - start, "households_per_s": rows / (end - start),
        "explained_rows": float(len(sample)), "explain_per_s": len(sample) / (t1 - t0),
        "shap_per_s": len(sample) / (t2 - t1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=20_000,
                        help="World size: the model is trained on it (the demo's size by default, so the "
                             "batch figure is for a model of the demo's depth).")
    parser.add_argument("--requests", type=int, default=300, help="Timed requests per server.")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--explain-rows", type=int, default=20_000, help="Alerted rows explained, both ways.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder and logs.")
    args = parser.parse_args()
    # Import the repo's packages from this checkout even when an older editable install maps them.
    sys.path.insert(0, str(REPO))

    from rich.console import Console
    from rich.table import Table

    from doudi.io import write_world
    from doudi.settings import disable_telemetry
    from doudi.world import generate_world
    from models.config import load_config
    from models.train import train

    disable_telemetry()
    console = Console(width=150)
    work = Path(tempfile.mkdtemp(prefix="doudi-bench-serving-"))
    uri = f"sqlite:///{work / 'mlflow.db'}"
    t = time.perf_counter()
    world = generate_world(args.households, 36, args.seed)
    write_world(world, work / "world")
    console.print(f"world: {args.households:,} households x 36 months in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    result = train(world, load_config(), tracking_uri=uri, progress=None)
    model = result.models["lightgbm"]
    console.print(f"model: trained and registered v{result.model_version} in {time.perf_counter() - t:.1f} s")

    single = single_household(world, work / "world", work, uri, str(result.model_version),
                              requests=args.requests, warmup=args.warmup)
    bulk = batch(world, model, rows=args.batch_rows, explain_rows=args.explain_rows, seed=args.seed)

    table = Table(title="doudi serving benchmark (2 cores, loopback)")
    for name in ("measure", "doudi", "reference", "ratio", "target"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    s, b = single, bulk
    table.add_row(f"single household p50 ({s['records']:.0f} records, {s['months_of_income']:.0f} months)",
                  f"{s['doudi_p50_ms']:.1f} ms", f"{s['mlflow_p50_ms']:.1f} ms (MLflow pyfunc server)",
                  f"{s['doudi_p50_ms'] / s['mlflow_p50_ms']:.1f}x", "")
    p99_met = "met" if s["doudi_p99_ms"] < P99_TARGET_MS else "MISSED"
    table.add_row("single household p99", f"{s['doudi_p99_ms']:.1f} ms", f"{s['mlflow_p99_ms']:.1f} ms",
                  f"{s['doudi_p99_ms'] / s['mlflow_p99_ms']:.1f}x", f"{p99_met} (< {P99_TARGET_MS:.0f} ms)")
    batch_met = "met" if b["households_per_s"] >= BATCH_TARGET else "MISSED"
    table.add_row(f"batch scoring ({b['rows']:,.0f} households, {b['trees']:.0f} trees)",
                  f"{b['households_per_s']:,.0f} /s", "", "", f"{batch_met} (>= {BATCH_TARGET:,.0f}/s)")
    table.add_row("  of which model / triggers / rank+select",
                  f"{b['model_s']:.2f} / {b['triggers_s']:.2f} / {b['rank_select_s']:.2f} s", "", "", "")
    table.add_row(f"explain alerted ({bulk['explained_rows']:,.0f} of {bulk['alerted']:,.0f} rows)",
                  f"{bulk['explain_per_s']:,.0f} /s", f"{bulk['shap_per_s']:,.0f} /s (shap.TreeExplainer)",
                  f"{bulk['explain_per_s'] / bulk['shap_per_s']:.2f}x", "")
    console.print(table)
    load = os.getloadavg()[0]
    console.print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores (shared machine)")
    if args.json is not None:
        args.json.write_text(json.dumps({"single": single, "batch": bulk, "load": load}, indent=2),
                             encoding="utf-8")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
