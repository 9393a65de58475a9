"""Parity: `runners/live.py` in paper mode on a replay and the backtester, over the same bars.

Two checks, each able to fail on its own:
- fills: the orders the runner decided (bar, side, quantity, stop distance), given to the backtester as
  per-bar orders, produce the same fills (time, price, quantity, fee) and the same final equity (1e-9);
- decisions: the runner's round trips (entry and exit fill times, exit reasons) equal those of the
  backtester run on the strategy's vectorised signals (`Strategy.backtest` with `asset="crypto_spot"`: the
  asset's sizing, lots and stop band), time stop and ATR stop included — so the bar-by-bar path decides what
  the research path decides.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tradingbot.data.samples import load_sample
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.portfolio import Portfolio
from tradingbot.strategies.base import make_strategy
from tradingbot.validation.backtest import backtest

from helpers import round_trips

ROOT = Path(__file__).resolve().parents[1]
BARS = 6000


def _config(tmp: Path, time_stop: int) -> Path:
    "A config dir trading only BTC with RSI-2 (time stop as given)."
    cfg = tmp / "config"
    shutil.copytree(ROOT / "config", cfg)
    assets = json.loads((cfg / "assets.json").read_text())
    assets["forex"]["enabled"] = False
    assets["crypto_spot"]["strategies"] = ["rsi2"]
    (cfg / "assets.json").write_text(json.dumps(assets))
    strategies = json.loads((cfg / "strategies.json").read_text())
    strategies["strategies"]["rsi2"]["params"]["time_stop_bars"] = time_stop
    (cfg / "strategies.json").write_text(json.dumps(strategies))
    return cfg


def _run(tmp: Path, time_stop: int) -> Path:
    "Run the paper runner over the first BARS bars; its state dir."
    state = tmp / "state"
    env = {**os.environ, "TRADINGBOT_LOG_DIR": str(tmp / "logs")}
    out = subprocess.run([sys.executable, str(ROOT / "runners" / "live.py"), "--config", str(_config(tmp, time_stop)),
                          "--state", str(state), "--bars", str(BARS)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert f"up to seq {BARS - 1}" in out.stdout
    return state


def _read(state: Path) -> tuple[pd.DataFrame, list[dict], dict]:
    "The runner's fills (in order), orders and final snapshot."
    db = sqlite3.connect(state / "tradingbot.sqlite")
    fills = pd.DataFrame([json.loads(r[0]) for r in db.execute("SELECT fill_json FROM fills ORDER BY ts, rowid")])
    orders = [json.loads(r[0]) for r in db.execute("SELECT order_json FROM orders ORDER BY created_at, rowid")]
    snap = json.loads(db.execute("SELECT doc FROM snapshots WHERE key = 'engine'").fetchone()[0])
    db.close()
    fills["ts"] = pd.to_datetime(fills["ts"])
    return fills, orders, snap


def test_paper_runner_fills_equal_backtest_fills(tmp_path):
    bars = load_sample("btcusd_1h").iloc[:BARS]
    fills, orders, snap = _read(_run(tmp_path, time_stop=0))
    assert len(orders) > 50 and len(fills) > 50
    size = pd.Series(np.nan, index=bars.index)
    dist = pd.Series(np.nan, index=bars.index)
    for o in orders:  # decided at a bar's close: that bar's row of the per-bar orders
        bar = pd.Timestamp(o["created_at"]) - pd.Timedelta("1h")
        assert np.isnan(size[bar]), f"two orders decided on {bar}"
        size[bar] = o["intent"]["qty"] * (1 if o["intent"]["side"] == "buy" else -1)
        dist[bar] = o["intent"]["sl_distance"] or np.nan
    result = backtest(bars, orders=pd.DataFrame({"size": size}), stop_distance=dist,
                      fill=FillConfig.for_asset("crypto_spot"), init_cash=1000.0)
    bt = result.fills
    assert len(bt) == len(fills)
    np.testing.assert_array_equal(bt["ts"].to_numpy(), fills["ts"].dt.tz_convert("UTC").to_numpy())
    for ours, theirs in (("qty", "qty"), ("price", "price"), ("fee", "fee")):
        np.testing.assert_allclose(fills[ours].to_numpy(), bt[theirs].to_numpy(), rtol=1e-12, atol=0)
    assert fills["side"].tolist() == bt["side"].astype(str).tolist()
    equity = Portfolio.from_dict(snap["books"]["crypto_spot/paper"]["portfolio"]).equity
    assert abs(equity - result.equity.iloc[-1]) <= 1e-9, (equity, result.equity.iloc[-1])
    assert (result.trades.exit_reason == "stop_loss").any()  # the stops were exercised, not just signals


def test_paper_runner_decides_like_the_vectorised_strategy(tmp_path):
    bars = load_sample("btcusd_1h").iloc[:BARS]
    fills, _, _ = _read(_run(tmp_path, time_stop=5))
    result = make_strategy("rsi2", {"time_stop_bars": 5}).backtest(bars, asset="crypto_spot")  # as paper trades it
    ours, theirs = round_trips(fills), result.trades
    assert len(theirs) > 50 and set(theirs.exit_reason) >= {"signal", "stop_loss", "time_stop"}
    assert len(ours) == len(theirs)
    np.testing.assert_array_equal(ours.entry_ts.dt.tz_convert("UTC").to_numpy(), theirs.entry_ts.to_numpy())
    np.testing.assert_array_equal(ours.exit_ts.dt.tz_convert("UTC").to_numpy(), theirs.exit_ts.to_numpy())
