"""Kill -9 between record and submit, with the kill switch on at the restart (issue 18).

Ten times, with a seeded random point each: a bot process runs an asset in paper, the operator confirms it live at a
random bar, and the process is SIGKILLed right after its first live opening order is recorded in the store — in the
store call itself, or inside the venue's submit before the request leaves. The operator then turns a kill switch on
(the asset's or the global one, at random) and the bot restarts on the same state directory and runs on: no opening
order reaches the live venue, the one recorded before the crash is settled as refused with its reason in the audit
log, the operator cannot confirm the asset live again, and the paper book keeps trading.

The live venue is a paper venue standing in for one (it is checkpointed with the engine, as a venue keeps its own
state); every order any venue receives is journalled to a file with fsync, so the journal outlives the kill.
"""
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tradingbot.config import set_key
from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.synthetic import synthetic_bars
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.simulated import SimulatedClient
from tradingbot.execution.store import OrderStore
from tradingbot.runtime.audit import AuditLog
from tradingbot.runtime.controller import Controller
from tradingbot.runtime.engine import Engine, asset_setup
from tradingbot.runtime.state import load_state

from helpers import AlwaysLong, config_keys

ASSET, SYMBOL = "crypto_spot", "BTCUSDT"
EVENTS = list(ReplayFeed({SYMBOL: synthetic_bars(160, "1h", seed=7, price=20_000.0)}, "1h").iter_bars())
RUNS = 10


@pytest.fixture(autouse=True)
def master_switch_on():
    "The master switch on (the operator's choice to allow live trading at all); put back after the test."
    with config_keys({"SAFETY.LIVE_TRADING_ENABLED": True}):
        yield


def journal_orders(journal: Path) -> None:
    "Every order a venue receives is appended to `journal` (fsynced) before the venue acts on it."
    submit = SimulatedClient.submit

    def journalled(self, order):
        with open(journal, "a") as fh:
            fh.write(json.dumps({"cid": order.client_order_id, "mode": order.mode,
                                 "reduce_only": order.reduce_only}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return submit(self, order)

    SimulatedClient.submit = journalled


def engine(state: Path) -> Engine:
    "The bot on `state`: one asset, the always-long strategy, a paper venue standing in for the live one."
    setup = dataclasses.replace(asset_setup(ASSET, []), symbols=[SYMBOL], strategies=[AlwaysLong()])
    live = {ASSET: lambda: SimulatedClient(ASSET, FillConfig.for_asset(ASSET), cash=1000.0)}
    bot = Engine([setup], state, state / "logs", checkpoint_bars=5, audit=AuditLog(state / "audit.jsonl"),
                 live_clients=live)
    bot.controller.gate = lambda sid, asset: True  # validation passed (the gate is tested on its own)
    return bot


def child(state: Path, live_at: int, where: str) -> None:
    "Run until the first live opening order is recorded, then die by SIGKILL at `where`."
    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    journal_orders(state / "venue.jsonl")  # wrapped by the kill below: a request that never left is not journalled
    if where == "after_record":
        record = OrderStore.record_order

        def record_then_die(self, order):
            stored = record(self, order)
            if order.mode == "live" and not order.reduce_only:
                die()
            return stored
        OrderStore.record_order = record_then_die
    else:  # in the venue's submit, before the request leaves
        submit = SimulatedClient.submit

        def die_in_submit(self, order):
            if order.mode == "live" and not order.reduce_only:
                die()
            return submit(self, order)
        SimulatedClient.submit = die_in_submit
    set_key("SAFETY.LIVE_TRADING_ENABLED", True)
    bot = engine(state)
    bot.start()
    for i, bar in enumerate(EVENTS):
        if i == live_at:
            ok, why = bot.controller.enable_live(ASSET, bot.controller.preview(ASSET)["token"])
            assert ok, why
        bot.process(bar)
    sys.exit(3)  # never reached: the first live opening order kills the process


def _journal(state: Path) -> list[dict]:
    path = state / "venue.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("run", range(RUNS))
def test_no_opening_order_reaches_the_venue_after_a_kill_9(tmp_path, run, monkeypatch):
    rng = random.Random(1000 + run)
    live_at, where, scope = rng.randint(3, 90), rng.choice(["after_record", "in_submit"]), rng.choice(["asset", "global"])
    state = tmp_path / "state"
    proc = subprocess.run([sys.executable, __file__, str(state), str(live_at), where], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not [o for o in _journal(state) if o["mode"] == "live"]  # it died before the order left

    with OrderStore(state / "tradingbot.sqlite") as store:  # the order the crash left behind
        (left,) = [o for o in store.open_orders() if o.mode == "live"]
    assert left.status == "new" and not left.reduce_only

    ctl = Controller(load_state(state / "runtime.json"), state / "runtime.json", audit=AuditLog(state / "audit.jsonl"))
    if scope == "asset":  # the operator turns a kill switch on while the bot is down
        ctl.set_asset_kill(ASSET, True, reason="test")
    else:
        ctl.set_global_kill(True, reason="test")

    monkeypatch.setattr(SimulatedClient, "submit", SimulatedClient.submit)  # undone after the test
    journal_orders(state / "venue.jsonl")
    bot = engine(state)
    bot.warm_up([b for b in EVENTS if b.seq <= bot.cursor])
    bot.start()
    ok, why = bot.controller.enable_live(ASSET, bot.controller.preview(ASSET)["token"])
    assert not ok and "kill switch is on" in why
    paper_before = len([o for o in _journal(state) if o["mode"] == "paper"])
    for bar in [b for b in EVENTS if b.seq > bot.cursor]:
        bot.process(bar)
    bot.finish()

    received = _journal(state)
    assert not [o for o in received if o["mode"] == "live" and not o["reduce_only"]], "an opening order went live"
    assert len([o for o in received if o["mode"] == "paper"]) > paper_before  # paper trades on
    with OrderStore(state / "tradingbot.sqlite") as store:
        assert store.get_order(left.client_order_id).status == "rejected"
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    refused = [r for r in audit if r["event"] == "order_refused" and r.get("client_order_id") == left.client_order_id]
    assert refused and refused[0]["stage"] == "mode" and "kill switch is on" in refused[0]["reason"], refused


if __name__ == "__main__":
    child(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
