"""Validation measures what will trade: `validate_strategy` and the paper engine, same strategy, same bars.

For a short-only and a long/short strategy on `crypto_futures` settings (shorting, the perpetuals' fees and
lot step) and for RSI-2 on the bundled BTC-USD hourly sample with `crypto_spot`'s configured sizing, the trades
the validation measures — time, side, quantity, price and fee of every fill — equal the paper engine's replay of
the same strategy to 1e-12, and the final equity to 1e-9. Each check fails on its own: a validation that sized
all-in, ignored `Signals.side`, skipped the asset's stop band or refused nothing below one lot would differ.
"""
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.samples import load_sample
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.risk import AssetRules
from tradingbot.runtime.engine import AssetSetup, Engine
from tradingbot.strategies.base import Signals, Strategy, make_strategy
from tradingbot.strategies.rules import RSI2
from tradingbot.validation.pipeline import validate_strategy

BARS = 5000


class ShortRSI2(RSI2):
    "RSI-2 upside down: short a spike above the trend filter's mirror, cover on the way back."

    def _rules(self, f):
        rsi = np.asarray(f[f"rsi_{self.params['rsi_period']}"])
        down = np.asarray(f["close"]) < np.asarray(f[f"sma_{self.params['trend_period']}"])
        return (rsi >= 100 - self.params["entry_below"]) & down, rsi <= 100 - self.params["exit_above"]

    def decide(self, f):
        sig = super().decide(f)
        return Signals(sig.entries, sig.exits, sig.stop_distance, sig.time_stop_bars, side=-1)

    def latest(self, bars):  # the base class's path (signals on the window), not RSI-2's long-only fast path
        return Strategy.latest(self, bars)


class BothRSI2(RSI2):
    "RSI-2 both ways: long the dip above the trend, short the spike below it."

    def decide(self, f):
        rsi = np.asarray(f[f"rsi_{self.params['rsi_period']}"])
        trend = np.asarray(f[f"sma_{self.params['trend_period']}"])
        up, close = np.asarray(f["close"]) > trend, np.asarray(f["close"])
        le, lx = (rsi <= self.params["entry_below"]) & up, rsi >= self.params["exit_above"]
        se, sx = (rsi >= 100 - self.params["entry_below"]) & (close < trend), rsi <= 100 - self.params["exit_above"]
        s = lambda x: pd.Series(x, f.index, dtype=bool)  # noqa: E731
        return Signals(s(le), s(lx), pd.Series(self._stop(f), f.index), self.params["time_stop_bars"], side=0,
                       short_entries=s(se), short_exits=s(sx))

    def latest(self, bars):
        return Strategy.latest(self, bars)


def _replay(tmp: Path, asset: str, strategy, bars: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    "The paper engine over `bars` (symbol BTCUSDT): its fills in order, and its final equity."
    setup = AssetSetup(asset, ["BTCUSDT"], [strategy], FillConfig.for_asset(asset), AssetRules.for_asset(asset))
    engine = Engine([setup], tmp / "state", tmp / "logs")
    engine.start()
    for bar in ReplayFeed({"BTCUSDT": bars}, "1h").iter_bars():
        engine.process(bar)
    equity = engine.portfolios[asset].equity
    engine.finish()
    with sqlite3.connect(tmp / "state" / "tradingbot.sqlite") as db:
        fills = pd.DataFrame([json.loads(r[0]) for r in db.execute("SELECT fill_json FROM fills ORDER BY ts, rowid")])
    fills["ts"] = pd.to_datetime(fills["ts"], utc=True)
    return fills, equity


def _assert_same_trades(paper: pd.DataFrame, paper_equity: float, validated) -> None:
    result = validated.run.result
    bt = result.fills
    assert len(bt) == len(paper), (len(bt), len(paper))
    np.testing.assert_array_equal(bt["ts"].to_numpy(), paper["ts"].to_numpy())
    assert bt["side"].astype(str).tolist() == paper["side"].tolist()
    for col in ("qty", "price", "fee"):
        np.testing.assert_allclose(paper[col].to_numpy(), bt[col].to_numpy(), rtol=1e-12, atol=0)
    assert abs(paper_equity - result.equity.iloc[-1]) <= 1e-9, (paper_equity, result.equity.iloc[-1])


@pytest.fixture(scope="module")
def btc():
    return load_sample("btcusd_1h").iloc[:BARS]


def test_short_only_strategy_validates_as_the_engine_trades_it(tmp_path, btc):
    strategy = ShortRSI2("short_rsi2")
    v = validate_strategy(strategy, btc, asset="crypto_futures", n_sims=20)
    trades = v.run.trades
    assert len(trades) > 30 and set(trades.direction) == {"short"}  # traded short, as the signals say
    paper, equity = _replay(tmp_path, "crypto_futures", ShortRSI2("short_rsi2"), btc)
    _assert_same_trades(paper, equity, v)


def test_long_short_strategy_validates_as_the_engine_trades_it(tmp_path, btc):
    v = validate_strategy(BothRSI2("both_rsi2"), btc, asset="crypto_futures", n_sims=20)
    assert set(v.run.trades.direction) == {"long", "short"}
    paper, equity = _replay(tmp_path, "crypto_futures", BothRSI2("both_rsi2"), btc)
    _assert_same_trades(paper, equity, v)


def test_rsi2_on_btc_hourly_validates_with_the_assets_sizing(tmp_path, btc):
    v = validate_strategy("rsi2", btc, n_sims=20)  # the sample stands for crypto_spot: its sizing, fees, lots
    assert v.asset == "crypto_spot" and v.sizing == "risk"
    orders = v.run.result.orders
    assert (orders.status_info == "stop_band").any()  # the asset's band refused some stops, as the router does
    paper, equity = _replay(tmp_path, "crypto_spot", make_strategy("rsi2"), btc)
    _assert_same_trades(paper, equity, v)
    notional = (v.run.trades.qty * v.run.trades.entry_price).to_numpy()
    assert notional.max() < 0.26 * v.run.result.equity.max()  # never all-in: at most a quarter of equity
