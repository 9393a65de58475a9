"""Safety matrix (issue 18): every order path × every condition, on the live book (the paper venue standing in for
a live venue), through the real engine, router, controller, budget and exposure checks.

Paths: a strategy's entry, a strategy's exit, an SL/TP re-sync, an order recorded before a crash and submitted again
after a restart, `resolve()` of an order whose outcome was unknown, a direct router call.
Conditions: asset kill, global kill, master switch off, the allocation used up by open positions, a cluster cap across
assets (spot BTC + futures ETH, then futures SOL), the correlation cap (SOL moves with an open ETH), a stop beyond 15 %
by `sl_pct` and by distance, a stop outside the asset's band, a reduce-only order that would flip, a quantity below
one lot.

Every opening order under every condition is refused with its reason on every path and never reaches the venue;
exits and protective orders pass under the switches and caps (a protective stop beyond the cap is set at the cap);
a reduce-only order that would flip is refused on every path that carries one. Paths a condition cannot arise on
are listed in NOT_APPLICABLE with the reason.
"""
import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from tradingbot.config import get_key, set_key
from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.synthetic import synthetic_bars
from tradingbot.execution.budget import Bucket
from tradingbot.execution.enums import Reason
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.model import Order, OrderIntent, client_order_id
from tradingbot.execution.simulated import SimulatedClient
from tradingbot.runtime.audit import AuditLog
from tradingbot.runtime.engine import Engine, asset_setup
from tradingbot.strategies.base import Decision

from helpers import config_keys

SPOT, FUT = "crypto_spot", "crypto_futures"
WARM = 150  # bars of each symbol before the test (the correlation cap reads 100 returns)


def _events(correlated: bool) -> list:
    """BTC, ETH and SOL each on its own path, or SOL moving exactly with ETH (correlation 1: only the correlation
    cap's world, so no other condition is refused by it); one 0.001 lot of ETH or SOL is about $100."""
    btc = synthetic_bars(WARM + 40, "1h", seed=1, price=50_000.0)
    eth = synthetic_bars(WARM + 40, "1h", seed=2, price=100_000.0)
    sol = eth.copy() if correlated else synthetic_bars(WARM + 40, "1h", seed=3, price=100_000.0)
    return list(ReplayFeed({"BTCUSDT": btc, "ETHUSDT": eth, "SOLUSDT": sol}, "1h").iter_bars())


EVENTS = {correlated: _events(correlated) for correlated in (False, True)}


@pytest.fixture(autouse=True)
def live_config():
    """Master switch on, no automatic kill, $1,100 allocations (past the $1,000 small-account line after fees, so
    entries are sized by the risk tiers); every key put back after the test."""
    with config_keys({"SAFETY.LIVE_TRADING_ENABLED": True, "SAFETY.CONSECUTIVE_LOSS_KILL": 100,
                      f"assets.{SPOT}.allocation_usd": 1100.0, f"assets.{FUT}.allocation_usd": 1100.0}):
        yield


def _stand_in(asset: str):
    cash = float(get_key(f"assets.{asset}.allocation_usd"))
    return lambda: SimulatedClient(asset, FillConfig.for_asset(asset), cash=cash, shorting=asset == FUT)


def _setups():
    spot = dataclasses.replace(asset_setup(SPOT, []), symbols=["BTCUSDT"])
    fut = dataclasses.replace(asset_setup(FUT, []), symbols=["ETHUSDT", "SOLUSDT"])
    return [spot, fut]


def _engine(tmp: Path) -> Engine:
    engine = Engine(_setups(), tmp / "state", tmp / "logs", live_clients={a: _stand_in(a) for a in (SPOT, FUT)},
                    audit=AuditLog(tmp / "audit.jsonl"))
    engine.start()
    _confirm(engine)
    return engine


def _confirm(engine: Engine) -> None:
    "The operator's preview and confirmation of both assets (the gate itself is tested elsewhere)."
    engine.controller.gate = lambda sid, asset: True
    for asset in (SPOT, FUT):
        ok, why = engine.controller.enable_live(asset, engine.controller.preview(asset)["token"])
        assert ok, why


class World:
    "The engine after the warm-up, holding a live ETH position (and a live BTC one when asked)."

    def __init__(self, tmp: Path, btc: bool = False, correlated: bool = False):
        self.tmp, self.engine, self.k, self.seq = tmp, _engine(tmp), 0, 0
        self.events = EVENTS[correlated]
        self.run(3 * WARM)
        self.hold(FUT, "ETHUSDT", 0.001)
        if btc:
            self.hold(SPOT, "BTCUSDT", 0.001)

    def run(self, n: int) -> None:
        for bar in self.events[self.k:self.k + n]:
            self.engine.process(bar)
        self.k += n

    def bar(self, symbol: str):
        return next(b for b in reversed(self.events[:self.k]) if b.symbol == symbol)

    def book(self, asset: str):
        return self.engine.book(asset, "live")

    def ctx(self, asset: str, symbol: str):
        return self.engine._context(self.book(asset), symbol, self.bar(symbol))

    def when(self):
        self.seq += 1
        return self.bar("SOLUSDT").close_time + timedelta(minutes=self.seq)  # a fresh decision time: a fresh id

    def hold(self, asset: str, symbol: str, qty: float) -> None:
        price = self.bar(symbol).close
        intent = OrderIntent(asset, symbol, "buy", None, "setup", qty=qty, sl_distance=0.02 * price)
        result = self.engine.router.place(intent, decision_ts=self.when(), ctx=self.ctx(asset, symbol), mode="live")
        assert result.ok, result
        self.run(6)
        assert self.book(asset).portfolio.position(symbol) is not None

    def venue_saw(self, asset: str, cid: str) -> bool:
        return self.book(asset).client.lookup(cid) is not None

    def refusal(self, cid: str) -> dict:
        "The audit trail's record of the order's refusal."
        lines = [json.loads(line) for line in (self.tmp / "audit.jsonl").read_text().splitlines()]
        return next(r for r in reversed(lines) if r["event"] == "order_refused" and r.get("client_order_id") == cid)


def _opening(w: World, condition: str) -> OrderIntent:
    "The opening SOL order a condition is about ($250: two lots; a 5 % stop, so the entry path sizes ~$440)."
    price = w.bar("SOLUSDT").close
    intent = OrderIntent(FUT, "SOLUSDT", "buy", None, "matrix", notional=250.0, sl_distance=0.05 * price)
    if condition == "stop_pct_over_cap":
        return dataclasses.replace(intent, sl_pct=20.0, sl_distance=None)
    if condition == "stop_distance_over_cap":
        return dataclasses.replace(intent, sl_distance=0.20 * price)
    if condition == "stop_outside_band":  # crypto_futures allows 0.5-10 %
        return dataclasses.replace(intent, sl_distance=0.12 * price)
    if condition == "below_one_lot":
        return dataclasses.replace(intent, notional=50.0)
    return intent


def _apply(w: World, condition: str) -> None:
    "Turn the condition on."
    c = w.engine.controller
    if condition == "asset_kill":
        c.set_asset_kill(FUT, True)
    elif condition == "global_kill":
        c.set_global_kill(True)
    elif condition == "master_off":
        set_key("SAFETY.LIVE_TRADING_ENABLED", False)
    elif condition == "allocation_used":  # $250 allocated, $100 of ETH open: $150 left for $200 or more
        w.engine.budgets["live"].buckets[FUT] = Bucket(250.0, 250.0)
    elif condition == "below_one_lot":  # the entry path sizes by the rules: a $500 account trades $10
        w.book(FUT).portfolio.cash -= 600.0


EXPECTED = {  # condition -> (stage, what the reason says)
    "asset_kill": ("mode", "kill switch is on for crypto_futures"),
    "global_kill": ("mode", "global kill switch is on"),
    "master_off": ("mode", "SAFETY.LIVE_TRADING_ENABLED is false"),
    "allocation_used": ("budget", "budget crypto_futures: needs"),
    "cluster_cap": ("exposure", "cluster btc_l1: 2 positions already open"),
    "correlation_cap": ("exposure", "correlation: SOLUSDT vs open ETHUSDT"),
    "stop_pct_over_cap": ("risk", "exceeds SAFETY.MAX_STOP_LOSS_PCT"),
    "stop_distance_over_cap": ("risk", "exceeds SAFETY.MAX_STOP_LOSS_PCT"),
    "stop_outside_band": ("risk", "stop band: a 12 % stop is outside crypto_futures's band"),
    "below_one_lot": ("risk", "below one lot"),
}
CONDITIONS = list(EXPECTED)
ENVIRONMENT = ["asset_kill", "global_kill", "master_off", "allocation_used", "cluster_cap", "correlation_cap"]
NOT_APPLICABLE = {  # (path, condition): why it cannot arise there
    ("entry", "stop_pct_over_cap"): "the engine's entries carry the strategy's stop distance, never an sl_pct",
}


def _world(tmp: Path, condition: str) -> World:
    return World(tmp, btc=condition == "cluster_cap", correlated=condition == "correlation_cap")


# ---- opening orders: refused on every path -------------------------------------------------------------------------

@pytest.mark.parametrize("condition", CONDITIONS)
def test_direct_router_call(tmp_path, condition):
    w = _world(tmp_path, condition)
    _apply(w, condition)
    result = w.engine.router.place(_opening(w, condition), decision_ts=w.when(), ctx=w.ctx(FUT, "SOLUSDT"), mode="live")
    stage, reason = EXPECTED[condition]
    assert (result.ok, result.stage) == (False, stage) and reason in result.reason, result
    assert w.engine.store.open_orders() == []


@pytest.mark.parametrize("condition", [c for c in CONDITIONS if ("entry", c) not in NOT_APPLICABLE])
def test_strategy_entry(tmp_path, condition):
    w = _world(tmp_path, condition)
    _apply(w, condition)
    sym, price = w.book(FUT).symbols["SOLUSDT"], w.bar("SOLUSDT").close
    stop = _opening(w, condition).sl_distance
    strategy = type("Stub", (), {"strategy_id": "matrix"})()
    w.engine._enter(w.book(FUT), sym, w.bar("SOLUSDT"), strategy, Decision(long_entry=True, stop_distance=stop), 1)
    (log, event, fields) = w.engine._pending_logs[-1]
    stage, reason = EXPECTED[condition]
    assert (event, fields["mode"], fields["stage"]) == ("intent_refused", "live", stage), fields
    assert reason in fields["reason"], fields
    assert sym.pending_entry is None and not [o for o in w.engine.store.open_orders() if not o.reduce_only]
    assert price > 0


@pytest.mark.parametrize("condition", CONDITIONS)
def test_resolve_of_an_unknown_order(tmp_path, condition):
    w = _world(tmp_path, condition)
    _apply(w, condition)
    order = _recorded(w, condition, "unknown")
    assert w.engine.router.resolve(FUT, "live", lambda o: w.ctx(FUT, o.intent.symbol)) == [order.client_order_id]
    assert w.engine.store.get_order(order.client_order_id).status == "rejected"
    assert not w.venue_saw(FUT, order.client_order_id)
    _assert_refused(w.refusal(order.client_order_id), condition)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_order_restored_after_a_crash(tmp_path, condition):
    w = _world(tmp_path, condition)
    order = _recorded(w, condition, "new")  # recorded, then the process died before it was sent
    w.engine.finish()
    again = Engine(_setups(), tmp_path / "state", tmp_path / "logs", live_clients={a: _stand_in(a) for a in (SPOT, FUT)},
                   audit=AuditLog(tmp_path / "audit.jsonl"))
    again.warm_up(w.events[:w.k])
    again.start()  # the boot rule: back close-only; the restored order is settled, never sent
    assert again.store.get_order(order.client_order_id).status == "rejected"
    assert again.book(FUT, "live").client.lookup(order.client_order_id) is None
    _confirm(again)  # the operator confirms live again; the condition still holds; the order is submitted again
    w.engine = again
    _apply(w, condition)
    result = again.router.submit(again.store.get_order(order.client_order_id), w.ctx(FUT, "SOLUSDT"))
    stage, reason = EXPECTED[condition]
    assert (result.ok, result.stage) == (False, stage) and reason in result.reason, result
    assert again.store.get_order(order.client_order_id).status == "rejected"
    assert not w.venue_saw(FUT, order.client_order_id)
    _assert_refused(w.refusal(order.client_order_id), condition)
    again.finish()


def _assert_refused(record: dict, condition: str) -> None:
    stage, reason = EXPECTED[condition]
    assert (record["stage"], record["mode"]) == (stage, "live") and reason in record["reason"], record


def _recorded(w: World, condition: str, status: str) -> Order:
    "The condition's opening order as the store holds it: sized as it was sent (a below-lot one: a fraction of a lot)."
    intent = _opening(w, condition)
    qty = 0.0004 if condition == "below_one_lot" else 0.002
    intent = dataclasses.replace(intent, notional=None, qty=qty)
    order = Order(client_order_id("matrix", "SOLUSDT", w.when(), 0, "live"), intent, status=status, mode="live")
    w.engine.store.record_order(order)
    return order


# ---- exits and protective orders: they pass where they should ----------------------------------------------------------

@pytest.mark.parametrize("condition", ENVIRONMENT)
def test_exits_and_protection_pass_under_switches_and_caps(tmp_path, condition):
    w = _world(tmp_path, condition)
    _apply(w, condition)
    book, eth = w.book(FUT), w.book(FUT).portfolio.position("ETHUSDT")
    sl = eth.entry * 0.97
    result = w.engine.router.protect(FUT, "live", "ETHUSDT", 1, eth.entry, sl, None)  # an SL/TP re-sync
    assert result.ok and book.client.protection("ETHUSDT") == (sl, None)
    assert w.engine._exit(book, book.symbols["ETHUSDT"], w.bar("ETHUSDT"), eth.qty, Reason.SIGNAL)  # a strategy exit
    cid = book.symbols["ETHUSDT"].pending_exit
    assert cid is not None and w.venue_saw(FUT, cid)
    w.run(6)
    assert book.portfolio.position("ETHUSDT") is None  # closed under the condition


@pytest.mark.parametrize("condition", ["stop_pct_over_cap", "stop_distance_over_cap"])
def test_a_protective_stop_beyond_the_cap_is_set_at_the_cap(tmp_path, condition):
    w = _world(tmp_path, condition)
    eth = w.book(FUT).portfolio.position("ETHUSDT")
    result = w.engine.router.protect(FUT, "live", "ETHUSDT", 1, eth.entry, eth.entry * 0.70, None)
    assert result.ok and "set at the cap" in result.reason
    np.testing.assert_allclose(w.book(FUT).client.protection("ETHUSDT")[0], eth.entry * 0.85, rtol=1e-12)


# ---- reduce-only that would flip: refused on every path that carries one -----------------------------------------------

def _flip(w: World) -> OrderIntent:
    held = w.book(FUT).portfolio.position("ETHUSDT").qty
    return OrderIntent(FUT, "ETHUSDT", "sell", None, "matrix", qty=2 * held)


def test_flip_on_the_exit_path(tmp_path):
    w = World(tmp_path)
    book = w.book(FUT)
    assert not w.engine._exit(book, book.symbols["ETHUSDT"], w.bar("ETHUSDT"), 2 * 0.001, Reason.SIGNAL)
    (_, event, fields) = w.engine._pending_logs[-1]
    assert (event, fields["stage"]) == ("intent_refused", "risk") and "would flip the position" in fields["reason"]


def test_flip_on_a_direct_call_and_on_resolve(tmp_path):
    w = World(tmp_path)
    result = w.engine.router.place(_flip(w), decision_ts=w.when(), ctx=w.ctx(FUT, "ETHUSDT"), reduce_only=True,
                                   mode="live")
    assert (result.ok, result.stage) == (False, "risk") and "would flip the position" in result.reason
    order = Order(client_order_id("matrix", "ETHUSDT", w.when(), 0, "live"), _flip(w), status="unknown",
                  reduce_only=True, mode="live")
    w.engine.store.record_order(order)
    w.engine.router.resolve(FUT, "live", lambda o: w.ctx(FUT, o.intent.symbol))
    assert w.engine.store.get_order(order.client_order_id).status == "rejected"
    assert not w.venue_saw(FUT, order.client_order_id)
    assert w.book(FUT).portfolio.position("ETHUSDT").qty == 0.001  # still the long it was


def test_the_paper_book_answers_to_no_switch(tmp_path):
    "The same opening order on the paper book passes a kill switch and the master switch: training goes on."
    w = World(tmp_path)
    _apply(w, "global_kill")
    _apply(w, "master_off")
    paper = w.engine.book(FUT, "paper")
    ctx = w.engine._context(paper, "SOLUSDT", w.bar("SOLUSDT"))
    result = w.engine.router.place(_opening(w, "asset_kill"), decision_ts=w.when(), ctx=ctx, mode="paper")
    assert result.ok, result


def test_flip_restored_after_a_crash(tmp_path):
    "A reduce-only order recorded before a crash, now larger than the position, is settled as refused at the restart."
    w = World(tmp_path)
    order = Order(client_order_id("matrix", "ETHUSDT", w.when(), 0, "live"), _flip(w), status="new",
                  reduce_only=True, mode="live")
    w.engine.store.record_order(order)
    w.engine.finish()
    again = Engine(_setups(), tmp_path / "state", tmp_path / "logs", live_clients={a: _stand_in(a) for a in (SPOT, FUT)},
                   audit=AuditLog(tmp_path / "audit.jsonl"))
    again.warm_up(w.events[:w.k])
    again.start()
    w.engine = again
    assert again.store.get_order(order.client_order_id).status == "rejected"
    assert not w.venue_saw(FUT, order.client_order_id)
    assert "would flip the position" in w.refusal(order.client_order_id)["reason"]
    assert w.book(FUT).portfolio.position("ETHUSDT").qty == 0.001
    again.finish()
