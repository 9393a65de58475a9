"""Runner benchmark: replay throughput of the paper-trading engine with persistence on, and per-bar decision latency.

1. Bars/s end to end on the bundled BTC hourly sample (~20k bars) through the runner's path: `Engine` on a fresh
   state directory (SQLite order store, checkpoints, runtime.json, trade/decision/error logs all on), `start()`,
   `run(ReplayFeed)`, the final checkpoint. Goal: >= 2,000 bars/s for one symbol. Once with RSI-2 alone, once with
   the asset's configured strategies; then `python runners/live.py` as a subprocess (whole process: interpreter,
   imports, config, sample loading, every replay asset), bars taken from its "bars processed up to seq N" line.
2. Decision latency for 20 synthetic hourly symbols x 2 strategies (RSI-2, IBS), merged in one replay.
   `engine.latencies` times one bar event (venue, fills, marks, both strategies' decisions, routing) without the
   checkpoint; a second pass times `engine.process(bar)` from outside, checkpoint included. Goal: p99 <= 5 ms.

Prints figures only (DESIGN §9: tests never assert on wall time). Run: `.venv/bin/python benchmarks/bench_runner.py`.
Everything is written under one temp directory (TRADINGBOT_LOG_DIR / TRADINGBOT_STATE_DIR point into it, set before
tradingbot is imported), removed at exit unless BENCH_KEEP=1.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TMP = Path(tempfile.mkdtemp(prefix="tradingbot-bench-runner-"))
os.environ["TRADINGBOT_LOG_DIR"] = str(TMP / "logs")  # before any tradingbot import: jsonlog, audit, state
os.environ["TRADINGBOT_STATE_DIR"] = str(TMP / "state")

import asyncio  # noqa: E402
import dataclasses  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from _common import machine_line  # noqa: E402

from tradingbot.data.feeds import ReplayFeed  # noqa: E402
from tradingbot.data.samples import load_sample  # noqa: E402
from tradingbot.data.synthetic import synthetic_bars  # noqa: E402
from tradingbot.runtime.engine import AssetSetup, Engine, asset_setup  # noqa: E402

N_SYMBOLS, N_SYNTH_BARS = 20, 3_000
_runs = 0


def fresh_dirs(label: str) -> tuple[Path, Path]:
    "A new, empty state directory and logs directory for one run."
    global _runs
    _runs += 1
    base = TMP / f"{_runs:02d}-{label}"
    (base / "state").mkdir(parents=True)
    return base / "state", base / "logs"


def disk_kib(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1024


def time_checkpoints(engine: Engine) -> list[float]:
    "Seconds of each checkpoint the engine writes from now on (an instance attribute here; the engine is unchanged)."
    spent: list[float] = []
    original = engine.checkpoint

    def timed(*args, **kwargs):
        c = time.perf_counter()
        original(*args, **kwargs)
        spent.append(time.perf_counter() - c)

    engine.checkpoint = timed
    return spent


def ms(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) * 1e3


# ---------------------------------------------------------------------------------------------------- throughput
def replay_once(strategies: list[str] | None, bars, label: str) -> dict:
    "The runner's path on a fresh state dir: Engine, start, run the replay, final checkpoint (in `finish`)."
    state_dir, logs_dir = fresh_dirs(label)
    t0 = time.perf_counter()
    engine = Engine([asset_setup("crypto_spot", strategies)], state_dir, logs_dir)
    engine.start()
    ckpt = time_checkpoints(engine)
    feed = ReplayFeed({"BTCUSDT": bars}, "1h")
    t1 = time.perf_counter()
    summary = asyncio.run(engine.run(feed))
    t2 = time.perf_counter()
    n = summary["cursor"] + 1
    return {"label": label, "bars": n, "setup_s": t1 - t0, "run_s": t2 - t1, "total_s": t2 - t0,
            "trades": summary["assets"]["crypto_spot"]["trades"],
            "equity": summary["assets"]["crypto_spot"]["equity"],
            "ckpt_n": len(ckpt), "ckpt_s": sum(ckpt),
            "strategies": [s.strategy_id for s in engine.setups["crypto_spot"].strategies],
            "state_kib": disk_kib(state_dir), "logs_kib": disk_kib(logs_dir)}


def bench_throughput() -> None:
    bars = load_sample("btcusd_1h")
    print(f"\n== replay throughput, persistence on: BTC hourly sample, {len(bars):,} bars, one symbol "
          "(goal >= 2,000 bars/s)")
    # warm-up on a throwaway dir: first-call costs (numba/talib/sqlite/pandas paths) are not what is measured here
    replay_once(["rsi2"], bars.iloc[:700], "warmup")
    print(f"{'strategies':24s} {'bars':>7s} {'setup s':>8s} {'run s':>7s} {'bars/s':>8s} {'goal':>6s} "
          f"{'trades':>7s} {'equity':>9s} {'ckpts':>6s} {'ckpt s':>7s} {'sqlite+json KiB':>16s} {'logs KiB':>9s}")
    for strategies, label in ((["rsi2"], "rsi2"), (None, "default")):
        r = replay_once(strategies, bars, label)
        rate = r["bars"] / r["total_s"]
        print(f"{'+'.join(r['strategies']):24s} {r['bars']:7,d} {r['setup_s']:8.3f} {r['run_s']:7.2f} "
              f"{rate:8,.0f} {rate / 2000:5.2f}x {r['trades']:7d} {r['equity']:9.2f} {r['ckpt_n']:6,d} "
              f"{r['ckpt_s']:7.2f} {r['state_kib']:16.0f} "
              f"{r['logs_kib']:9.0f}")
    print("(bars/s = bars / (setup + run); setup = Engine() on an empty state dir + start(); run ends with "
          "finish()'s final checkpoint;\n"
          " ckpts / ckpt s: checkpoints written and the seconds spent in them, part of run s)")


def bench_subprocess() -> None:
    state_dir, logs_dir = fresh_dirs("live-py")
    cmd = [sys.executable, "runners/live.py", "--state", str(state_dir)]
    env = {**os.environ, "TRADINGBOT_LOG_DIR": str(logs_dir)}
    print(f"\n== `{' '.join(['python', *cmd[1:2], '--state', '<tmp>'])}` as a subprocess "
          "(whole process: interpreter start, imports, config, samples, every replay asset)")
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(f"exit code {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
        return
    for line in proc.stdout.splitlines():
        print(f"  | {line}")
    match = re.search(r"bars processed up to seq (-?\d+)", proc.stdout)
    n = int(match.group(1)) + 1 if match else 0
    print(f"wall {wall:.2f} s for {n:,} bars (all replay assets merged) -> {n / wall:,.0f} bars/s incl. start-up")


# ---------------------------------------------------------------------------------------------------- latency
def synthetic_setup() -> tuple[AssetSetup, dict]:
    symbols = [f"SYN{i:02d}USDT" for i in range(N_SYMBOLS)]
    frames = {sym: synthetic_bars(N_SYNTH_BARS, "1h", start="2020-01-01", seed=100 + i, price=100.0 * (1 + i))
              for i, sym in enumerate(symbols)}
    setup = dataclasses.replace(asset_setup("crypto_spot", ["rsi2", "ibs"]), symbols=symbols)
    return setup, frames


def print_dist(label: str, seconds: list[float], goal: bool = True) -> None:
    x = np.asarray(seconds)
    p99 = ms(x, 99)
    print(f"{label:44s} {len(x):7,d} {ms(x, 50):7.3f} {ms(x, 90):7.3f} {p99:7.3f} {x.max() * 1e3:8.2f} "
          f"{x.mean() * 1e3:7.3f}   {('ok' if p99 <= 5 else 'OVER') if goal else '-'}")


def bench_latency() -> None:
    print(f"\n== decision latency: {N_SYMBOLS} synthetic hourly symbols x {N_SYNTH_BARS:,} bars, RSI-2 + IBS, "
          "one merged replay (goal p99 <= 5 ms)")
    head = (f"{'':44s} {'bars':>7s} {'p50 ms':>7s} {'p90 ms':>7s} {'p99 ms':>7s} {'max ms':>8s} {'mean ms':>7s}"
            "   p99 goal")

    # pass 1: the runner's path (async run), the engine's own per-bar timer (checkpoint excluded)
    setup, frames = synthetic_setup()
    state_dir, logs_dir = fresh_dirs("latency-run")
    engine = Engine([setup], state_dir, logs_dir)
    engine.latencies = []
    engine.start()
    t = time.perf_counter()
    summary = asyncio.run(engine.run(ReplayFeed(frames, "1h")))
    run_s = time.perf_counter() - t
    n = summary["cursor"] + 1
    print(head)
    print_dist("engine.latencies, run() (excl. checkpoint)", engine.latencies)
    warm = [lat for lat in engine.latencies[N_SYMBOLS * 600:]]  # after every symbol's 600-bar window has filled
    print_dist("  same, after the windows filled (600 bars)", warm)
    trades = summary["assets"]["crypto_spot"]["trades"]

    # pass 2: process() timed from outside over iter_bars(), checkpoint included; checkpoints counted and timed
    setup, frames = synthetic_setup()
    state_dir2, logs_dir2 = fresh_dirs("latency-process")
    engine2 = Engine([setup], state_dir2, logs_dir2)
    engine2.latencies = []
    engine2.start()
    checkpoint_s = time_checkpoints(engine2)
    outside: list[float] = []
    for bar in ReplayFeed(frames, "1h").iter_bars():
        c = time.perf_counter()
        engine2.process(bar)
        outside.append(time.perf_counter() - c)
    summary2 = engine2.finish()
    print_dist("engine.latencies, process() loop (excl. ckpt)", engine2.latencies)
    print_dist("process() timed outside (incl. checkpoint)", outside)
    print_dist("  checkpoint() alone, when it ran", checkpoint_s, goal=False)
    print(f"{n:,} bars in {run_s:.2f} s through run() -> {n / run_s:,.0f} bars/s for {N_SYMBOLS} symbols; "
          f"trades {trades} (process() loop: {summary2['assets']['crypto_spot']['trades']}); "
          f"checkpoints {len(checkpoint_s):,} of {len(outside):,} bars ({len(checkpoint_s) / len(outside):.1%}); "
          f"sqlite+json {disk_kib(state_dir):,.0f} KiB, logs {disk_kib(logs_dir):,.0f} KiB")


if __name__ == "__main__":
    try:
        import sqlite3
        print(machine_line(numpy=np.__version__, sqlite=sqlite3.sqlite_version))
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
        print(f"state and logs under {TMP}; load average before the run: {load} "
              "(a loaded or shared host moves these figures a lot: compare runs on one quiet machine)")
        bench_throughput()
        bench_subprocess()
        bench_latency()
    finally:
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(TMP, ignore_errors=True)
