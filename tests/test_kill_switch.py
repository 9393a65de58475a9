"""Kill switch and stop-loss cap through the engine and router.

- with the kill switch on, no opening order passes the router; a position already open keeps its
  stop at the venue and still closes; the paper engine keeps processing bars; the switch survives a restart;
- a stop-loss beyond SAFETY.MAX_STOP_LOSS_PCT is refused whichever way the order comes: from a strategy,
  from an order restored from the store, from a direct router call (hypothesis).
"""
import dataclasses
import json
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.samples import load_sample
from tradingbot.execution.model import Order, OrderIntent, client_order_id
from tradingbot.execution.router import BookContext
from tradingbot.jsonlog import read_jsonl
from tradingbot.runtime.engine import Engine, asset_setup
from tradingbot.strategies.rules import make_strategy

BTC = load_sample("btcusd_1h").iloc[:3000]
WHEN = datetime(2024, 3, 1, 10, tzinfo=timezone.utc)


def _engine(tmp: Path, setups=None) -> Engine:
    engine = Engine(setups or [asset_setup("crypto_spot", ["rsi2"])], tmp / "state", tmp / "logs")
    engine.start()
    return engine


def _openings(engine: Engine) -> int:
    rows = engine.store._conn.execute("SELECT order_json FROM orders").fetchall()
    return sum(not json.loads(r[0])["reduce_only"] for r in rows)


def _refusals(tmp: Path) -> list[dict]:
    files = sorted((tmp / "logs" / "decisions").glob("crypto_spot_decisions_*.jsonl"))
    return [r for f in files for r in read_jsonl(f) if r["event"] == "intent_refused"]


def test_kill_switch_close_only_keeps_protection_and_paper_runs(tmp_path):
    engine = _engine(tmp_path)
    bars = list(ReplayFeed({"BTCUSDT": BTC}, "1h").iter_bars())
    pf, client = engine.portfolios["crypto_spot"], engine.clients["crypto_spot"]
    i = 0
    while i < 1000 or pf.position("BTCUSDT") is None:  # run until a position is open
        engine.process(bars[i])
        i += 1
    engine.controller.set_global_kill(True)
    sl, _ = client.protection("BTCUSDT")
    assert sl is not None  # protective stop in place at the venue
    before = _openings(engine)
    engine.process(bars[i])
    if pf.position("BTCUSDT") is not None:
        assert client.protection("BTCUSDT")[0] == sl  # the kill did not touch the stop
    for bar in bars[i + 1:]:
        engine.process(bar)
    assert engine.cursor == len(bars) - 1  # paper kept running to the end
    assert _openings(engine) == before  # no opening order passed
    assert pf.position("BTCUSDT") is None  # the open position still closed (signal, stop or time)
    engine.checkpoint()
    refused = [r for r in _refusals(tmp_path) if r["stage"] == "mode"]
    assert refused and all("global kill switch is on" in r["reason"] for r in refused)
    engine.finish()

    again = _engine(tmp_path)  # a restart keeps the switch on
    assert again.controller.can_open("crypto_spot") == (False, "global kill switch is on")
    more = list(ReplayFeed({"BTCUSDT": load_sample("btcusd_1h").iloc[:6000]}, "1h", start_seq=again.cursor + 1)
                .iter_bars())
    for bar in more:
        again.process(bar)
    assert _openings(again) == before
    again.controller.set_global_kill(False)
    assert again.controller.can_open("crypto_spot")[0]
    again.finish()


def test_asset_kill_blocks_only_that_asset(tmp_path):
    engine = _engine(tmp_path)
    engine.controller.set_asset_kill("crypto_spot", True)
    for bar in ReplayFeed({"BTCUSDT": BTC}, "1h").iter_bars():
        engine.process(bar)
    assert _openings(engine) == 0
    assert engine.controller.can_open("forex")[0]
    engine.finish()


def test_wide_stop_from_a_strategy_is_refused(tmp_path):
    wide = make_strategy("rsi2", {"atr_stop_mult": 60.0})  # ~1 % ATR x 60: stops far beyond 15 %
    setup = dataclasses.replace(asset_setup("crypto_spot", []), strategies=[wide])
    engine = _engine(tmp_path, [setup])
    for bar in ReplayFeed({"BTCUSDT": BTC}, "1h").iter_bars():
        engine.process(bar)
    openings = _openings(engine)
    engine.finish()
    refused = _refusals(tmp_path)
    assert len(refused) > 10 and openings == 0
    assert all(r["stage"] == "risk" and "exceeds SAFETY.MAX_STOP_LOSS_PCT" in r["reason"] for r in refused)


def test_wide_stop_in_a_restored_order_is_refused(tmp_path):
    engine = _engine(tmp_path)
    for bar in ReplayFeed({"BTCUSDT": BTC.iloc[:50]}, "1h").iter_bars():
        engine.process(bar)
    intent = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=22.0, strategy_id="rsi2", qty=0.01)
    cid = client_order_id("rsi2", "BTCUSDT", WHEN, 0)
    engine.store.record_order(Order(cid, intent, status="unknown"))  # as a crash would have left it
    engine.finish()
    restarted = _engine(tmp_path)  # start() settles unknown orders through the router
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
