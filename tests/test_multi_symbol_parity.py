"""Parity with two symbols in one asset (one shared wallet): the engine and the backtester's cash-sharing group.

`tests/test_runner_parity.py` covers one symbol through `runners/live.py`. The bundled replay has one sample
per asset, so this drives the `Engine` directly over BTC-USD hourly and a seeded synthetic second symbol,
merged into one replay the way a live feed delivers them (close-time order), and checks:
- fills: the engine's orders, given to `backtest({symbol: bars})` as per-bar orders, produce the same fills
  (time, symbol, side, price, quantity, fee) in the same order, and the same final equity (1e-9);
- decisions: each symbol's round trips equal those of the backtester run on the strategy's vectorised signals
  with the ATR stop and a 5-bar time stop;
- funding: on perpetuals (crypto_futures with a funding rate) the paper venue's funding reaches the portfolio,
  so the engine's equity still equals the backtester's, which books funding in its loop.
"""
import dataclasses
import asyncio
import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.samples import load_sample
from tradingbot.data.synthetic import synthetic_bars
from tradingbot.execution.fills import FillConfig
from tradingbot.runtime.engine import Engine, asset_setup
from tradingbot.strategies.rules import make_strategy
from tradingbot.validation.backtest import backtest

from helpers import round_trips

N = 3000
FILL = FillConfig.for_asset("crypto_spot")
PERP_FILL = dataclasses.replace(FillConfig.for_asset("crypto_futures"), funding_rate=0.0003)


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    btc = load_sample("btcusd_1h").iloc[:N]
    return {"BTCUSDT": btc, "ETHUSDT": synthetic_bars(N, "1h", start=btc.index[0], seed=7, price=200.0)}


def _run(tmp: Path, frames: dict, time_stop: int, asset: str = "crypto_spot", fill: FillConfig = FILL
         ) -> tuple[pd.DataFrame, list[dict], Engine]:
    "Paper-trade RSI-2 on both symbols of `asset`; the engine's fills (in order) and orders."
    setup = asset_setup(asset, ["rsi2"])
    setup.symbols, setup.strategies = list(frames), [make_strategy("rsi2", {"time_stop_bars": time_stop})]
    setup.fill = fill
    engine = Engine([setup], tmp / "state", tmp / "logs")
    engine.start()
    assert asyncio.run(engine.run(ReplayFeed(frames, "1h")))["cursor"] == 2 * N - 1
    with sqlite3.connect(tmp / "state" / "tradingbot.sqlite") as db:
        fills = pd.DataFrame([json.loads(r[0]) for r in db.execute("SELECT fill_json FROM fills ORDER BY ts, rowid")])
        orders = [json.loads(r[0]) for r in db.execute("SELECT order_json FROM orders ORDER BY created_at, rowid")]
    fills["ts"] = pd.to_datetime(fills["ts"]).dt.tz_convert("UTC")
    return fills, orders, engine


@pytest.mark.parametrize("asset, fill", [("crypto_spot", FILL), ("crypto_futures", PERP_FILL)])
def test_two_symbols_fill_like_the_backtesters_cash_sharing_group(tmp_path, frames, asset, fill):
    fills, orders, engine = _run(tmp_path, frames, time_stop=0, asset=asset, fill=fill)
    assert set(fills.symbol) == set(frames) and len(fills) > 100
    index = next(iter(frames.values())).index
    size = pd.DataFrame(np.nan, index=index, columns=list(frames))
    dist = size.copy()
    for o in orders:  # decided at a bar's close: that bar's row of the per-bar orders
        bar, sym = pd.Timestamp(o["created_at"]) - pd.Timedelta("1h"), o["intent"]["symbol"]
        assert np.isnan(size.loc[bar, sym]), f"two orders for {sym} decided on {bar}"
        size.loc[bar, sym] = o["intent"]["qty"] * (1 if o["intent"]["side"] == "buy" else -1)
        dist.loc[bar, sym] = o["intent"]["sl_distance"] or np.nan
    result = backtest(frames, orders={s: size[[s]].rename(columns={s: "size"}) for s in frames},
                      stop_distance=dist, fill=fill, init_cash=1000.0)
    bt = result.fills
    assert len(bt) == len(fills)
    np.testing.assert_array_equal(bt["ts"].to_numpy(), fills["ts"].to_numpy())
    assert fills["symbol"].tolist() == bt["symbol"].astype(str).tolist()  # same order inside a bar too
    assert fills["side"].tolist() == bt["side"].astype(str).tolist()
    for col in ("qty", "price", "fee"):
        np.testing.assert_allclose(fills[col].to_numpy(), bt[col].to_numpy(), rtol=1e-12, atol=0)
    portfolio = engine.portfolios[asset]
    assert abs(portfolio.equity - result.equity.iloc[-1]) <= 1e-9, (portfolio.equity, result.equity.iloc[-1])
    assert abs(portfolio.equity - engine.clients[asset].equity()) <= 1e-9  # the book agrees with its venue
    assert (result.trades.exit_reason == "stop_loss").any()
    funding = result.trades["funding"].sum()
    assert (funding < -1e-3) if fill.funding_rate else (funding == 0), funding  # longs pay a positive rate


def test_two_symbols_decide_like_the_vectorised_strategy(tmp_path, frames):
    fills, _, _ = _run(tmp_path, frames, time_stop=5)
    strategy = make_strategy("rsi2", {"time_stop_bars": 5})
    sig = {s: strategy.signals(b) for s, b in frames.items()}
    frame = lambda name: pd.DataFrame({s: getattr(x, name) for s, x in sig.items()})  # noqa: E731
    result = backtest(frames, frame("entries"), frame("exits"), stop_distance=frame("stop_distance"),
                      time_stop_bars=5, sizing="notional", size=100.0, fill=FILL, init_cash=1000.0)
    trades = result.trades
    assert set(trades.exit_reason) >= {"signal", "stop_loss", "time_stop"}
    for sym in frames:
        ours, theirs = round_trips(fills[fills.symbol == sym]), trades[trades.symbol.astype(str) == sym]
        assert len(theirs) > 20 and len(ours) == len(theirs), (sym, len(ours), len(theirs))
        np.testing.assert_array_equal(ours.entry_ts.to_numpy(), theirs.entry_ts.to_numpy())
        np.testing.assert_array_equal(ours.exit_ts.to_numpy(), theirs.exit_ts.to_numpy())
