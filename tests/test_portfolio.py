"""The paper book (`execution.portfolio.Portfolio`) replays a backtest's fills to the backtester's equity.

The backtester and the paper portfolio must book cash with the same floating-point operations in the
same order (DESIGN §6); any drift here means a paper session and a backtest over the same bars would
disagree for accounting reasons alone.
"""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingbot.data.samples import load_sample
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.model import Fill
from tradingbot.execution.portfolio import Portfolio
from tradingbot.strategies.rules import make_strategy
from tradingbot.validation.backtest import backtest

INIT_CASH = 1_000.0


@pytest.fixture(scope="module")
def run():
    "An RSI-2 backtest with fees, spread and a 2 % stop, and the paper replay of its fills."
    bars = load_sample("btcusd_1h").iloc[:4000]
    sig = make_strategy("rsi2").signals(bars)
    result = backtest(bars, sig.entries, sig.exits, sizing="notional", size=300, init_cash=INIT_CASH,
                      fill=FillConfig(taker_fee_pct=0.1, spread_pct=0.05), sl_pct=2.0)
    fills = result.fills
    book = Portfolio("crypto_spot", INIT_CASH)
    by_bar = {ts: grp for ts, grp in fills.groupby("ts", sort=False, observed=True)}
    equity, closed = [], []
    for ts, close in bars["close"].items():
        for n, f in enumerate(by_bar[ts].itertuples()) if ts in by_bar else ():
            fill = Fill(f"{f.order_id}-{n}", f"o{f.order_id}", "BTCUSD", str(f.side), f.qty, f.price, f.fee, ts,
                        maker=bool(f.maker))
            for ev in book.on_fill(fill, reason=str(f.reason), strategy_id="rsi2"):
                if ev.name == "PositionClosed":
                    closed.append((ev.pnl_realized, book.last_trade))
        book.mark("BTCUSD", close)
        equity.append(book.equity)
    return result, book, equity, closed


def test_replay_has_trades(run):
    result, _, _, closed = run
    assert len(result.trades) >= 20, "too few trades for the comparison to mean anything"
    assert len(closed) == len(result.trades)
    assert (result.fills["fee"] > 0).all()  # fees are in play, so their booking order is tested


def test_final_equity_matches_backtest(run):
    result, book, _, _ = run
    assert abs(book.equity - result.equity.iloc[-1]) <= 1e-9


def test_equity_at_every_bar_matches_backtest(run):
    result, _, equity, _ = run
    worst = max(abs(a - b) for a, b in zip(equity, result.equity.to_numpy()))
    assert len(equity) == len(result.equity)
    assert worst <= 1e-9, f"equity drifts from the backtest by {worst}"


def test_equity_is_bit_identical(run):
    # 1e-9 would let a reordered fee subtraction (~1e-12 per fill) through; the same operations give 0.0
    result, book, equity, _ = run
    assert equity == result.equity.tolist()
    assert book.fees == result.stats["fees"]


def test_realised_pnl_of_each_trade_matches_backtest(run):
    result, _, _, closed = run
    for (pnl, last), row in zip(closed, result.trades.to_dict("records")):
        assert pnl == row["pnl"]
        assert last["ret"] == row["return"]
        assert last["fees"] == row["fees"]
        assert last["exit_reason"] == str(row["exit_reason"])
        assert last["entry_price"] == row["entry_price"] and last["exit_price"] == row["exit_price"]


def test_valuation_counts_match_backtest(run):
    result, book, _, _ = run
    v = book.valuation()
    assert v["trades"] == result.stats["n_trades"]
    assert math.isclose(v["fees"], result.stats["fees"], rel_tol=0, abs_tol=1e-9)
    assert math.isclose(v["pnl_r"], result.trades["pnl"].sum(), rel_tol=0, abs_tol=1e-6)


_step = st.tuples(st.sampled_from(["buy", "sell"]), st.floats(0.001, 5.0), st.floats(1.0, 500.0),
                  st.floats(0.0, 0.5))


@settings(max_examples=200, deadline=None)
@given(st.lists(_step, min_size=1, max_size=30), st.sampled_from(["BTCUSDT", "ETHUSDT"]))
def test_round_trips_keep_cash_consistent(steps, symbol):
    book = Portfolio("crypto_futures", INIT_CASH)
    pnls, flows = [], 0.0
    for i, (side, qty, price, fee) in enumerate(steps):
        events = book.on_fill(Fill(f"e{i}", f"c{i}", symbol, side, qty, price, fee, "2024-01-01T00:00:00+00:00"))
        pnls += [e.pnl_realized for e in events if e.name == "PositionClosed"]
        flows += (-1 if side == "buy" else 1) * qty * price - fee
        book.mark(symbol, price)
        # state survives JSON exactly at every step
        again = Portfolio.from_dict(json.loads(json.dumps(book.to_dict())))
        assert again.to_dict() == book.to_dict()
        assert again.equity == book.equity
    assert math.isclose(book.cash, INIT_CASH + flows, rel_tol=1e-12, abs_tol=1e-7)
    pos = book.position(symbol)
    if pos is not None:  # flatten at the last price so every dollar is realised
        side = "sell" if pos.qty > 0 else "buy"
        events = book.on_fill(Fill("flat", "cflat", symbol, side, abs(pos.qty), book.prices[symbol], 0.0,
                                   "2024-01-01T00:00:00+00:00"))
        pnls += [e.pnl_realized for e in events if e.name == "PositionClosed"]
    assert book.position(symbol) is None
    assert book.trades == len(pnls)
    assert math.isclose(book.equity, INIT_CASH + sum(pnls), rel_tol=1e-12, abs_tol=1e-7)
    assert math.isclose(book.pnl_r, sum(pnls), rel_tol=1e-12, abs_tol=1e-7)
