"""Parity: the paper `SimulatedClient` fills exactly as `backtest(..., orders=...)` does on the same bars.

A small driver plays the backtester's `_decide_nb` for per-bar orders against the client: at bar i, after
`on_bar`, it cancels the symbol's working orders; an order opposing the position becomes a reduce-only
order of min(qty, |pos|) and an entry of the rest carrying Protection(sl_distance=dist[i], tp_pct=TP).
The driver draws its orders from a seeded RNG and from the client's position (exits close it), records
them as the backtest's orders frame, and the backtest then replays that frame. If the client's fills,
positions or wallet drifted from the loop's, the two would disagree.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import talib

from tradingbot.brokers.base import Execution
from tradingbot.data.feeds import BarEvent
from tradingbot.data.samples import load_sample
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.model import Order, OrderIntent, client_order_id
from tradingbot.execution.simulated import SimulatedClient
from tradingbot.validation.backtest import backtest

N_BARS = 3_000
INIT_CASH = 1_000.0


def bar_events(bars: pd.DataFrame, symbol: str) -> list[BarEvent]:
    step = bars.index[1] - bars.index[0]
    rows = bars[["open", "high", "low", "close", "volume"]].to_numpy().tolist()
    return [BarEvent(symbol, "1h", ts, ts + step, *row, k) for k, (ts, row) in enumerate(zip(bars.index, rows))]


def stop_distance(bars: pd.DataFrame) -> pd.Series:
    "1.5 ATR, 1 % of the close before the ATR exists: always well inside the 15 % stop cap."
    atr = talib.ATR(*(bars[k].to_numpy() for k in ("high", "low", "close")), timeperiod=14) * 1.5
    return pd.Series(np.where(np.isnan(atr), bars.close.to_numpy() * 0.01, atr), bars.index)


class Driver:
    "The backtester's `_decide_nb` for one per-bar order, played against a client."

    def __init__(self, symbol: str, asset: str, tp_pct: float):
        self.symbol, self.asset, self.tp_pct, self.ids, self.n = symbol, asset, tp_pct, [], 0

    def order(self, client: SimulatedClient, bar: BarEvent, size: float, otype: str, limit: float, stop: float,
              dist: float) -> None:
        for coid in self.ids:  # cancelling a finished order is a no-op
            client.cancel(coid)
        self.ids = []
        side, qty = (1 if size > 0 else -1), abs(size)
        pos = client.positions().get(self.symbol, 0.0)
        if pos * side < 0:
            close_qty = min(qty, abs(pos))
            self._send(client, bar, side, close_qty, otype, limit, stop, True, None)
            qty -= close_qty
        if qty > 0.0:
            self._send(client, bar, side, qty, otype, limit, stop, False, dist)

    def _send(self, client, bar, side, qty, otype, limit, stop, reduce_only, dist) -> None:
        intent = OrderIntent(self.asset, self.symbol, "buy" if side > 0 else "sell", None, "parity", qty=qty,
                             sl_distance=dist, tp_schema={"type": "pct", "pct": self.tp_pct})
        coid = client_order_id("parity", self.symbol, bar.close_time, self.n)
        self.n += 1
        order = Order(coid, intent, order_type=otype, reduce_only=reduce_only,
                      limit_price=limit if otype == "limit" else None, stop_price=stop if otype == "stop" else None)
        ack = client.submit(order)
        assert ack.status == "submitted", ack
        self.ids.append(coid)


def draw(rng: np.random.Generator, pos: float, close: float) -> tuple[float, str, float, float] | None:
    "A random per-bar order: entries of random size (some beyond the cash), exits closing the position."
    if rng.random() > 0.08:
        return None
    kind = rng.integers(5)
    if kind == 0 and pos != 0.0:
        return -pos, "market", np.nan, np.nan
    side = 1.0 if rng.random() < 0.5 else -1.0
    size = side * INIT_CASH / close * rng.uniform(0.1, 1.3)
    if kind == 3:
        return size, "limit", close * (1 - side * rng.uniform(0.0, 0.01)), np.nan
    if kind == 4:
        return size, "stop", np.nan, close * (1 + side * rng.uniform(0.0, 0.01))
    return size, "market", np.nan, np.nan


def run_client(bars, symbol, asset, cfg, dist, tp_pct, seed, cuts=(), frame=None):
    "Drive a client over `bars` (orders drawn, or replayed from `frame`); executions, orders frame, client."
    client, driver = SimulatedClient(asset, cfg, cash=INIT_CASH, shorting=True), Driver(symbol, asset, tp_pct)
    rng, out, rows = np.random.default_rng(seed), [], []
    for k, bar in enumerate(bar_events(bars, symbol)):
        if k in cuts:
            client = SimulatedClient.restore(json.loads(json.dumps(client.snapshot(), allow_nan=False)),
                                             fill=cfg if cfg.funding_rate is not None else None)
        client.on_bar(bar)
        if frame is None:
            spec = draw(rng, client.positions().get(symbol, 0.0), bar.close)
        else:
            r = frame.iloc[k]
            spec = None if np.isnan(r["size"]) else (r["size"], r["type"], r["limit"], r["stop"])
        rows.append(spec or (np.nan, "market", np.nan, np.nan))
        if spec is not None:
            driver.order(client, bar, *spec, float(dist.iloc[k]))
        out += [e for e in client.poll() if isinstance(e, Execution)]
    frame = pd.DataFrame(rows, columns=["size", "type", "limit", "stop"], index=bars.index)
    return out, frame, client


def fills_of(executions: list[Execution]) -> pd.DataFrame:
    return pd.DataFrame({"ts": [pd.Timestamp(e.fill.ts) for e in executions],
                         "side": [e.fill.side for e in executions],
                         **{k: [getattr(e.fill, k) for e in executions] for k in ("qty", "price", "fee", "maker")},
                         "reason": [e.reason for e in executions]})


CASES = {
    "btcusd_1h": dict(symbol="BTCUSDT", asset="crypto_futures", start=5_000, tp_pct=1.5,
                      cfg=dict(taker_fee_pct=0.055, maker_fee_pct=0.02, spread_pct=0.02, slippage_pct=0.01,
                               funding_rate=0.0001, funding_interval_h=8)),
    "eurusd_1h": dict(symbol="EURUSD", asset="forex", start=1_000, tp_pct=0.2,
                      cfg=dict(taker_fee_pct=0.002, maker_fee_pct=0.002, spread_pct=0.01, slippage_pct=0.005,
                               vol_slippage_k=0.05)),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    spec = CASES[request.param]
    bars = load_sample(request.param).iloc[spec["start"]:spec["start"] + N_BARS]
    # a volume cap near a typical order's size: many orders fill over several bars
    participation = 0.6 * float(INIT_CASH / bars.close.median() / bars.volume.median())
    cfg = FillConfig(participation=participation, **spec["cfg"])
    dist = stop_distance(bars)
    executions, frame, client = run_client(bars, spec["symbol"], spec["asset"], cfg, dist, spec["tp_pct"], seed=7)
    result = backtest(bars, orders=frame, stop_distance=dist, tp_pct=spec["tp_pct"], fill=cfg, init_cash=INIT_CASH)
    return dict(spec, bars=bars, cfg=cfg, dist=dist, executions=executions, frame=frame, client=client,
                result=result)


def test_fills_equal_backtest(case):
    ours, theirs = fills_of(case["executions"]), case["result"].fills
    reasons = set(theirs.reason.astype(str))
    assert {"order", "stop_loss", "take_profit"} <= reasons  # the run exercises every kind of fill
    assert (theirs.groupby("order_id").size() > 1).any()  # and partial fills
    assert len(ours) == len(theirs) > 100
    pd.testing.assert_series_equal(ours.ts, pd.Series(theirs.ts.to_numpy(), name="ts"), check_dtype=False)
    assert ours.side.tolist() == theirs.side.astype(str).tolist()
    assert ours.reason.tolist() == theirs.reason.astype(str).tolist()
    assert ours.maker.tolist() == theirs.maker.tolist()
    for k in ("qty", "price", "fee"):
        np.testing.assert_allclose(ours[k].to_numpy(), theirs[k].to_numpy(), rtol=1e-12, atol=0, err_msg=k)
        assert (ours[k].to_numpy() == theirs[k].to_numpy()).all(), f"{k} is not bit-identical"


def test_wallet_equals_backtest(case):
    client, result = case["client"], case["result"]
    final = result.stats["final_equity"]
    assert abs(client.equity() - final) <= 1e-9 * abs(final)
    assert abs(client.equity() - result.equity.iloc[-1]) <= 1e-9 * abs(final)
    pos = case["executions"]
    assert client.positions().get(case["symbol"], 0.0) == pytest.approx(
        sum((1 if e.fill.side == "buy" else -1) * e.fill.qty for e in pos), rel=1e-9, abs=1e-12)


def test_snapshot_restore_continues_identically(case):
    cuts = (1, 17, 400, 1_234, 2_000, 2_999)
    executions, _, client = run_client(case["bars"], case["symbol"], case["asset"], case["cfg"], case["dist"],
                                       case["tp_pct"], seed=0, cuts=cuts, frame=case["frame"])
    assert fills_of(executions).equals(fills_of(case["executions"]))
    assert [e.fill.exec_id for e in executions] == [e.fill.exec_id for e in case["executions"]]
    assert client.equity() == case["client"].equity()


def test_a_wrong_fee_is_caught(case):
    "The comparison has teeth: the same orders with a slightly different taker fee do not match."
    cfg = FillConfig(**{**case["cfg"].__dict__, "taker_fee_pct": case["cfg"].taker_fee_pct * 1.01})
    executions, _, _ = run_client(case["bars"], case["symbol"], case["asset"], cfg, case["dist"], case["tp_pct"],
                                  seed=0, frame=case["frame"])
    ours, theirs = fills_of(executions), case["result"].fills
    assert len(ours) != len(theirs) or not np.array_equal(ours.fee.to_numpy(), theirs.fee.to_numpy())
