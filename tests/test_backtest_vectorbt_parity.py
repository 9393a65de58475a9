"""Parity: the backtester's equity curve equals vectorbt's `Portfolio.from_signals` on the same signals.

Each case sets vectorbt up to mean what our backtester means, by configuration only:
- close fills: vectorbt's default `price=close`; ours `price="close"`;
- next-open fills: vectorbt `price=open` with the signals shifted one bar; ours `price="next_open"`;
- stops: vectorbt checks `sl_stop`/`tp_stop` against each later bar's open/high/low and fills at the stop
  price (`stop_exit_price="stoplimit"`, the open on a gap), from the entry bar's close — our close-fill entry
  price; the bar of a stop exit takes no new signal (vectorbt's rule; ours `stop_cooldown_bars=1`);
- long/short: vectorbt's `lock_cash=True` is our free-cash accounting (short proceeds do not fund new entries);
- several symbols: vectorbt `cash_sharing=True` with `size_type="value"` is our `sizing="notional"` on a mapping.
vectorbt gets numpy arrays: with a tz-aware pandas 3 index it spends seconds converting timestamps.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib
import vectorbt as vbt

from tradingbot.data.samples import load_sample
from tradingbot.execution.fills import FillConfig
from tradingbot.validation.backtest import backtest

INIT_CASH = 10_000.0
RTOL = 1e-9


@pytest.fixture(scope="module")
def samples() -> dict[str, pd.DataFrame]:
    return {name: load_sample(name) for name in ("spx_1d", "btcusd_1h")}


def rsi2(bars: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    "Connors' RSI-2: buy below 10 above the 200-bar SMA, sell above 70."
    close = bars.close.to_numpy()
    rsi, sma = talib.RSI(close, 2), talib.SMA(close, 200)
    return pd.Series((rsi < 10) & (close > sma), bars.index), pd.Series(rsi > 70, bars.index)


def sma_cross(bars: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    "10/50 SMA crossover: long while the fast average is above the slow one."
    close = bars.close.to_numpy()
    fast, slow = talib.SMA(close, 10), talib.SMA(close, 50)
    above = pd.Series(fast > slow, bars.index)
    return above & ~above.shift(1, fill_value=False), ~above & above.shift(1, fill_value=False)


RULES = {"rsi2": rsi2, "sma_cross": sma_cross}


def vbt_value(bars: pd.DataFrame, entries, exits, **kwargs) -> np.ndarray:
    "Equity of vectorbt's from_signals on numpy inputs."
    ohlc = {k: bars[k].to_numpy() for k in ("open", "high", "low")}
    pf = vbt.Portfolio.from_signals(bars.close.to_numpy(), np.asarray(entries), np.asarray(exits), **ohlc,
                                    init_cash=INIT_CASH, **kwargs)
    return pf.value().to_numpy(), pf


def check(ours, theirs: np.ndarray, pf) -> None:
    "Equal equity within RTOL, the same closed round trips, and enough of them to mean something."
    np.testing.assert_allclose(ours.equity.to_numpy(), theirs, rtol=RTOL, atol=0)
    assert ours.stats["n_trades"] == pf.positions.closed.count() > 10


@pytest.mark.parametrize("sample", ["spx_1d", "btcusd_1h"])
@pytest.mark.parametrize("rule", list(RULES))
def test_close_fills_without_costs(samples, sample, rule):
    bars = samples[sample]
    entries, exits = RULES[rule](bars)
    ours = backtest(bars, entries, exits, price="close", init_cash=INIT_CASH)
    check(ours, *vbt_value(bars, entries, exits))


@pytest.mark.parametrize("sample", ["spx_1d", "btcusd_1h"])
@pytest.mark.parametrize("rule", list(RULES))
def test_next_open_fills_with_fees(samples, sample, rule):
    bars = samples[sample]
    entries, exits = RULES[rule](bars)
    ours = backtest(bars, entries, exits, init_cash=INIT_CASH, fill=FillConfig(taker_fee_pct=0.1))
    theirs = vbt_value(bars, entries.shift(1, fill_value=False), exits.shift(1, fill_value=False),
                       price=bars.open.to_numpy(), fees=0.001)
    check(ours, *theirs)


@pytest.mark.parametrize("sample", ["spx_1d", "btcusd_1h"])
@pytest.mark.parametrize("rule", list(RULES))
def test_fixed_stop_loss(samples, sample, rule):
    bars = samples[sample]
    entries, exits = RULES[rule](bars)
    ours = backtest(bars, entries, exits, price="close", sl_pct=2, init_cash=INIT_CASH)
    check(ours, *vbt_value(bars, entries, exits, sl_stop=0.02))
    assert (ours.trades.exit_reason == "stop_loss").sum() > 5  # the stop really acted


@pytest.mark.parametrize("sample", ["spx_1d", "btcusd_1h"])
def test_stop_loss_with_fees(samples, sample):
    bars = samples[sample]
    entries, exits = rsi2(bars)
    ours = backtest(bars, entries, exits, price="close", sl_pct=2, init_cash=INIT_CASH,
                    fill=FillConfig(maker_fee_pct=0.1, taker_fee_pct=0.1))
    check(ours, *vbt_value(bars, entries, exits, sl_stop=0.02, fees=0.001))


@pytest.mark.parametrize("sample", ["spx_1d", "btcusd_1h"])
def test_trailing_stop_and_take_profit(samples, sample):
    bars = samples[sample]
    entries, exits = sma_cross(bars)
    ours = backtest(bars, entries, exits, price="close", trail_pct=3, tp_pct=5, init_cash=INIT_CASH)
    check(ours, *vbt_value(bars, entries, exits, sl_stop=0.03, sl_trail=True, tp_stop=0.05))
    assert {"trailing_stop", "take_profit"} <= set(ours.trades.exit_reason)


@pytest.mark.parametrize("sample", ["spx_1d", "btcusd_1h"])
def test_long_short_reversals(samples, sample):
    bars = samples[sample]
    rsi = talib.RSI(bars.close.to_numpy(), 2)
    longs, shorts = pd.Series(rsi < 10, bars.index), pd.Series(rsi > 90, bars.index)
    ours = backtest(bars, longs, None, shorts, None, price="close", init_cash=INIT_CASH,
                    fill=FillConfig(taker_fee_pct=0.1))
    theirs = vbt_value(bars, longs, np.zeros(len(bars), bool), short_entries=shorts.to_numpy(),
                       short_exits=np.zeros(len(bars), bool), fees=0.001, lock_cash=True)
    check(ours, *theirs)
    assert set(ours.trades.direction) == {"long", "short"}
    assert ours.stats["n_fills"] == 2 * len(theirs[1].orders.values) - 1  # a reversal is one order there, two here


def test_symbols_sharing_cash(samples):
    eur = load_sample("eurusd_1h")
    btc = samples["btcusd_1h"]
    common = btc.index.intersection(eur.index)
    pair = {"BTC": btc.loc[common], "EUR": eur.loc[common]}
    rsi = {s: talib.RSI(f.close.to_numpy(), 2) for s, f in pair.items()}
    entries = pd.DataFrame({s: r < 10 for s, r in rsi.items()}, index=common)
    exits = pd.DataFrame({s: r > 70 for s, r in rsi.items()}, index=common)
    ours = backtest(pair, entries, exits, price="close", sizing="notional", size=6_000, init_cash=INIT_CASH,
                    fill=FillConfig(taker_fee_pct=0.1))
    close = np.column_stack([f.close.to_numpy() for f in pair.values()])
    pf = vbt.Portfolio.from_signals(close, entries.to_numpy(), exits.to_numpy(), size=6_000, size_type="value",
                                    fees=0.001, init_cash=INIT_CASH, cash_sharing=True, group_by=True)
    np.testing.assert_allclose(ours.equity.to_numpy(), pf.value().to_numpy(), rtol=RTOL, atol=0)
    assert ours.stats["n_fills"] == len(pf.orders.values) > 10
    bought = ours.fills[ours.fills.side == "buy"]
    assert (bought.qty * bought.price < 6_000 * (1 - 1e-6)).any()  # some entries found less than 6,000 left
