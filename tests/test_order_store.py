"Order store faults: idempotency, reopen, and a writer killed with SIGKILL mid-loop."
import os
import signal
import sqlite3
import subprocess
import textwrap

import pytest

from conftest import ROOT, python
from tradingbot.execution.model import Fill, Order, OrderIntent, OrderSubmitted, client_order_id
from tradingbot.execution.store import SCHEMA_VERSION, OrderStore, StoreError

TS = "2024-03-01T08:00:00Z"


def make_order(i: int) -> Order:
    intent = OrderIntent("crypto_futures", "ETHUSDT", "sell", sl_pct=2.0, strategy_id="ibs", qty=0.1)
    return Order(client_order_id("ibs", "ETHUSDT", TS, i), intent, created_at=TS)


def make_fill(order: Order, exec_id: str) -> Fill:
    return Fill(exec_id, order.client_order_id, "ETHUSDT", "sell", 0.05, 3400.0, 0.1, TS)


def test_duplicate_exec_id_counts_once(tmp_path):
    order = make_order(0)
    with OrderStore(tmp_path / "s.sqlite") as store:
        store.record_order(order)
        fill = make_fill(order, "x-1")
        assert [store.add_fill(fill) for _ in range(3)] == [True, False, False]
        assert store.add_fill(make_fill(order, "x-2")) is True
        assert [f.exec_id for f in store.fills_for(order.client_order_id)] == ["x-1", "x-2"]


def test_record_before_send_is_idempotent(tmp_path):
    order = make_order(0)
    with OrderStore(tmp_path / "s.sqlite") as store:
        first = store.record_order(order)
        store.update_order_status(order.client_order_id, "submitted", "B-1")
        # a restart re-derives the same decision: the stored, submitted order comes back, nothing new
        second = store.record_order(make_order(0))
        assert first == order
        assert (second.status, second.broker_order_id) == ("submitted", "B-1")
        count = store._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        assert count == 1


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "deep" / "s.sqlite"
    orders = [make_order(i) for i in range(5)]
    with OrderStore(path) as store:
        for o in orders:
            store.record_order(o)
            store.add_fill(make_fill(o, f"e-{o.client_order_id}"))
        store.update_order_status(orders[0].client_order_id, "filled")
        store.append_event(OrderSubmitted(TS, orders[1].client_order_id, "B-2"))
    with OrderStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [o.client_order_id for o in store.open_orders()] == [o.client_order_id for o in orders[1:]]
        assert all(len(store.fills_for(o.client_order_id)) == 1 for o in orders)
        assert store.events()[0].domain() == OrderSubmitted(TS, orders[1].client_order_id, "B-2")
        assert store.integrity_check() == "ok"
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_closed_store_refuses_use(tmp_path):
    store = OrderStore(tmp_path / "s.sqlite")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="is closed"):
        store.record_order(make_order(0))


WRITER = textwrap.dedent("""
    import sys
    from tradingbot.execution.model import Fill, Order, OrderIntent, OrderSubmitted, client_order_id
    from tradingbot.execution.store import OrderStore

    store = OrderStore(sys.argv[1])
    intent = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=1.0, strategy_id="rsi2", notional=10.0)
    i = 0
    while True:
        cid = client_order_id("rsi2", "BTCUSDT", "2024-03-01T08:00:00Z", i)
        store.record_order(Order(cid, intent))
        store.add_fill(Fill(f"e{i}", cid, "BTCUSDT", "buy", 0.001, 60000.0, 0.01, "2024-03-01T08:00:01Z"))
        store.append_event(OrderSubmitted("2024-03-01T08:00:01Z", cid, f"b{i}"))
        print(i, flush=True)  # only after all three commits returned
        i += 1
""")


def test_sigkill_while_writing_loses_nothing_committed(tmp_path):
    path = tmp_path / "killed.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([python(), "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        last = -1
        for line in proc.stdout:
            last = int(line)
            if last >= 150:
                break
        assert last >= 150, "the writer stopped before being killed"
        os.kill(proc.pid, signal.SIGKILL)  # mid-loop: the writer never stops on its own
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    with OrderStore(path) as store:
        assert store.integrity_check() == "ok"
        for i in range(last + 1):
            cid = client_order_id("rsi2", "BTCUSDT", "2024-03-01T08:00:00Z", i)
            assert store.get_order(cid) is not None, f"order {i} was committed but is missing"
            assert [f.exec_id for f in store.fills_for(cid)] == [f"e{i}"]
        ids = [e.payload["broker_order_id"] for e in store.events()]
        assert ids[: last + 1] == [f"b{i}" for i in range(last + 1)]
        # the store stays writable after the crash
        assert store.add_fill(make_fill(make_order(0), "after-crash")) is True
