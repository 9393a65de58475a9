"""Kill switch and stop-loss cap through the engine and router — paper keeps running beside live.

- With an asset live (the paper venue standing in for its live venue) and its kill switch on, the live book only
  closes: no opening live order passes, the position open at the kill keeps its stop at the venue and still closes;
  the paper book keeps trading and is exactly the paper book of a run without the kill switch (seeds: "Close-Only
  (no new live orders) … paper continues"; "training runs regardless of live state"). This replaces the test that
  asserted the old rule, "a kill stops paper too".
- The switch survives a restart; the global switch acts the same way; releasing it lets the live book open again.
- A stop-loss beyond SAFETY.MAX_STOP_LOSS_PCT is refused whichever way the order comes: from a strategy, from an
  order restored from the store, from a direct router call (hypothesis).
"""
import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingbot.config import get_key
from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.samples import load_sample
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.model import Order, OrderIntent, client_order_id
from tradingbot.execution.router import BookContext
from tradingbot.execution.simulated import SimulatedClient
from tradingbot.jsonlog import read_jsonl
from tradingbot.runtime.engine import Engine, asset_setup
from tradingbot.strategies.base import make_strategy

from helpers import config_keys

BTC = load_sample("btcusd_1h").iloc[:4000]
BARS = list(ReplayFeed({"BTCUSDT": BTC}, "1h").iter_bars())
WHEN = datetime(2024, 3, 1, 10, tzinfo=timezone.utc)


@pytest.fixture
def master_on():
    "SAFETY.LIVE_TRADING_ENABLED on for the test (and no automatic kill: the test turns the switch itself)."
    with config_keys({"SAFETY.LIVE_TRADING_ENABLED": True, "SAFETY.CONSECUTIVE_LOSS_KILL": 100}):
        yield


def _stand_in() -> SimulatedClient:
    "The paper venue standing in for crypto_spot's live venue, on the asset's allocation."
    return SimulatedClient("crypto_spot", FillConfig.for_asset("crypto_spot"),
                           cash=float(get_key("assets.crypto_spot.allocation_usd")))


def _engine(tmp: Path, live: bool = False, setups=None) -> Engine:
    engine = Engine(setups or [asset_setup("crypto_spot", ["rsi2"])], tmp / "state", tmp / "logs",
                    live_clients={"crypto_spot": _stand_in} if live else None)
    engine.start()
    if live:  # the operator's two confirmations (the gate is exercised in test_controller.py)
        engine.controller.gate = lambda sid, asset: True
        assert engine.controller.enable_live("crypto_spot", engine.controller.preview("crypto_spot")["token"])[0]
    return engine


def _orders(engine: Engine, mode: str) -> list[dict]:
    rows = engine.store._conn.execute("SELECT order_json FROM orders ORDER BY rowid").fetchall()
    return [o for o in (json.loads(r[0]) for r in rows) if o["mode"] == mode]


def _openings(engine: Engine, mode: str = "paper") -> int:
    return sum(not o["reduce_only"] for o in _orders(engine, mode))


def _refusals(tmp: Path) -> list[dict]:
    files = sorted((tmp / "logs" / "decisions").glob("crypto_spot_decisions_*.jsonl"))
    return [r for f in files for r in read_jsonl(f) if r["event"] == "intent_refused"]


def test_kill_switch_makes_the_live_book_close_only_and_paper_keeps_trading(tmp_path, master_on):
    reference = _engine(tmp_path / "ref", live=True)  # the same run with no kill switch
    for bar in BARS:
        reference.process(bar)
    ref_paper = reference.book("crypto_spot").portfolio.to_dict()
    ref_openings = _openings(reference)
    reference.finish()

    engine = _engine(tmp_path, live=True)
    live = None
    for i, bar in enumerate(BARS):
        engine.process(bar)
        live = engine.book("crypto_spot", "live")
        if i > 1000 and live is not None and live.portfolio.position("BTCUSDT") is not None:
            break
    sl, _ = live.client.protection("BTCUSDT")
    assert sl is not None  # the live position's stop is at its venue
    before = _openings(engine, "live")
    engine.controller.set_asset_kill("crypto_spot", True)
    engine.process(BARS[i + 1])
    if live.portfolio.position("BTCUSDT") is not None:
        assert live.client.protection("BTCUSDT")[0] == sl  # the kill did not touch the stop
    for bar in BARS[i + 2:]:
        engine.process(bar)
    assert engine.cursor == len(BARS) - 1
    assert _openings(engine, "live") == before  # no opening live order passed after the kill
    assert live.portfolio.position("BTCUSDT") is None  # the open live position still closed
    engine.checkpoint()
    refused = [r for r in _refusals(tmp_path) if r["mode"] == "live" and r["stage"] == "mode"]
    assert refused and all(r["reason"] == "kill switch is on for crypto_spot" for r in refused)
    # the paper book trades on, and is the paper book of the run without a kill switch
    assert not [r for r in _refusals(tmp_path) if r["mode"] == "paper" and r["stage"] == "mode"]
    assert _openings(engine) == ref_openings > 50
    assert engine.book("crypto_spot").portfolio.to_dict() == ref_paper
    engine.finish()

    again = Engine([asset_setup("crypto_spot", ["rsi2"])], tmp_path / "state", tmp_path / "logs",
                   live_clients={"crypto_spot": _stand_in})  # a restart keeps the switch on
    again.start()
    assert again.controller.can_open("crypto_spot") == (False, "kill switch is on for crypto_spot")
    assert again.controller.can_open("crypto_spot", "paper") == (True, "ok")
    again.finish()


def test_global_kill_and_its_release(tmp_path, master_on):
    engine = _engine(tmp_path, live=True)
    engine.controller.set_global_kill(True)
    for bar in BARS[:2500]:
        engine.process(bar)
    assert _openings(engine, "live") == 0 and _openings(engine) > 10
    engine.controller.set_global_kill(False)  # released: the live book is close-only no more ...
    assert engine.controller.can_open("crypto_spot") == (True, "ok")
    for bar in BARS[2500:]:
        engine.process(bar)
    assert _openings(engine, "live") > 0  # ... and opens again
    engine.finish()


def test_wide_stop_from_a_strategy_is_refused(tmp_path):
    wide = make_strategy("rsi2", {"atr_stop_mult": 60.0})  # ~1 % ATR x 60: stops far beyond 15 %
    setup = dataclasses.replace(asset_setup("crypto_spot", []), strategies=[wide])
    engine = _engine(tmp_path, setups=[setup])
    for bar in BARS[:3000]:
        engine.process(bar)
    openings = _openings(engine)
    engine.finish()
    refused = _refusals(tmp_path)
    assert len(refused) > 10 and openings == 0
    assert all(r["stage"] == "risk" and "exceeds SAFETY.MAX_STOP_LOSS_PCT" in r["reason"] for r in refused)


def test_wide_stop_in_a_restored_order_is_refused(tmp_path):
    engine = _engine(tmp_path)
    for bar in BARS[:50]:
        engine.process(bar)
    intent = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=22.0, strategy_id="rsi2", qty=0.01)
    cid = client_order_id("rsi2", "BTCUSDT", WHEN, 0)
    engine.store.record_order(Order(cid, intent, status="unknown"))  # as a crash would have left it
    engine.finish()
    restarted = _engine(tmp_path)  # start() settles unknown orders through the router's checks
    assert restarted.store.get_order(cid).status == "rejected"
    assert restarted.clients["crypto_spot"].lookup(cid) is None  # never reached the venue
    restarted.finish()


@settings(max_examples=60, deadline=None)
@given(sl_pct=st.floats(15.0001, 99.0), dist_pct=st.floats(0.1, 99.0), via_distance=st.booleans())
def test_wide_stop_direct_router_call_is_refused(tmp_path_factory, sl_pct, dist_pct, via_distance):
    tmp = tmp_path_factory.mktemp("router")
    engine = Engine([asset_setup("crypto_spot", ["rsi2"])], tmp / "state", tmp / "logs")
    price = 50_000.0
    # the stop is wide through sl_pct, or through a distance (the stop rule's distance is what the venue holds)
    dist = price * max(dist_pct, 15.0001) / 100 if via_distance else None
    intent = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=None if via_distance else sl_pct,
                         strategy_id="rsi2", notional=100.0, sl_distance=dist)
    ctx = BookContext(equity=5_000.0, price=price, qty_step=1e-6, min_notional=5.0)
    result = engine.router.place(intent, decision_ts=WHEN, ctx=ctx)
    assert (result.ok, result.stage) == (False, "risk")
    assert "exceeds SAFETY.MAX_STOP_LOSS_PCT" in result.reason
    assert engine.store.get_order(client_order_id("rsi2", "BTCUSDT", WHEN, 0)) is None
    engine.store.close()
