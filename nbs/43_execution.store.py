# %% [markdown]
# # Order store
#
# > SQLite persistence of orders, fills, positions and runtime events: an order is recorded before it is sent, a fill counts once, and a crash loses nothing committed.

# %%
#| default_exp execution.store

# %% [markdown]
# One file, `state/tradingbot.sqlite`, is the execution path's memory across restarts. The rules it
# enforces:
#
# - **record before send** — the router calls `record_order` *before* the broker call. Recording the
#   same `client_order_id` again returns the stored row instead of a duplicate, so a restart that
#   re-derives a decision finds its order rather than sending a second one;
# - **a fill counts once** — `exec_id` is the fills table's primary key; a fill reported twice (REST
#   poll and WebSocket, or a replay after reconnect) is a no-op that returns `False`;
# - **nothing committed is lost** — each public write is one transaction; the journal is WAL with
#   `synchronous=FULL`. NORMAL would survive a process crash too, but may drop the last transactions
#   on power loss, and a lost order row is exactly the duplicate-order hazard this store exists to
#   prevent. Writes are a few per trade, so the extra fsync costs nothing that matters.
#
# The schema version lives in `PRAGMA user_version`; a file written by a newer schema is refused.

# %%
#| export
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tradingbot.execution.model import (OPEN_STATUSES, ORDER_STATUSES, Event, Fill, Order, Position,
                                        event_from_dict, utc, utc_now)

# %%
#| hide
import tempfile

from fastcore.test import test_close, test_eq, test_fail

from tradingbot.execution.model import OrderFilled, OrderIntent, PositionOpened, client_order_id

tmp = Path(tempfile.mkdtemp())

# %%
#| export
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE orders (
    client_order_id TEXT PRIMARY KEY,
    symbol TEXT NOT NULL,
    status TEXT NOT NULL,
    broker_order_id TEXT,
    order_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE INDEX orders_by_status ON orders(status);
CREATE TABLE fills (
    exec_id TEXT PRIMARY KEY,
    client_order_id TEXT NOT NULL,
    ts TEXT NOT NULL,
    fill_json TEXT NOT NULL);
CREATE INDEX fills_by_order ON fills(client_order_id);
CREATE TABLE positions (
    asset TEXT NOT NULL,
    symbol TEXT NOT NULL,
    position_json TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (asset, symbol));
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL);
"""
# version 2: the engine's checkpoint (paper client, portfolios, sessions, replay cursor) as one JSON row per key
_SCHEMA_2 = """
CREATE TABLE snapshots (
    key TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    updated_at TEXT NOT NULL);
"""
_MIGRATIONS = {1: _SCHEMA, 2: _SCHEMA_2}  # version -> statements that bring the previous version to it


class StoreError(RuntimeError):
    "The order store cannot be used as asked."


@dataclass(frozen=True, slots=True)
class StoredEvent:
    "A row of the append-only event log."
    id: int
    ts: str  # ISO-8601 UTC
    event: str  # event name
    payload: dict

    def domain(self) -> Event:
        "The domain event this row holds (for rows appended as `Event`s)."
        return event_from_dict(self.payload)


# %% [markdown]
# ## The store
# `OrderStore` opens (and migrates) the file; its methods, one group per table, are shown one by one
# below. Python's `sqlite3` is put in autocommit mode (`isolation_level=None`) and every write runs inside an
# explicit `BEGIN IMMEDIATE … COMMIT`: the write lock is taken up front, and a failure anywhere in the
# block rolls the whole block back.

# %%
#| export
def _order_from_row(row) -> Order:
    status, broker_order_id, order_json = row
    return Order.from_dict({**json.loads(order_json), "status": status, "broker_order_id": broker_order_id})


class OrderStore:
    "SQLite store of orders, fills, positions and events (one writer process)."

    def __init__(self, path: str | Path,  # the database file (created with its parent directory)
                 ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.DatabaseError as exc:  # not a database, or a damaged one: never overwrite order records
            self._db.close()
            raise StoreError(f"{self.path} is not a usable SQLite database ({exc}); it is left untouched because "
                             "it holds the order records: restore it from a backup, or move it aside to start "
                             "with an empty store") from None

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            self.close()
            raise StoreError(f"{self.path} has schema version {version}, newer than this code's {SCHEMA_VERSION}; "
                             "upgrade tradingbot before opening it")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._tx() as db:
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={target}")

    @property
    def schema_version(self) -> int:
        "The schema version stored in `PRAGMA user_version`."
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"the order store {self.path} is closed")
        return self._db

    def _tx(self):
        return _Transaction(self._conn)

    def integrity_check(self) -> str:
        "SQLite's integrity check: 'ok' when the file is sound."
        return "\n".join(row[0] for row in self._conn.execute("PRAGMA integrity_check"))

    def close(self) -> None:
        "Close the connection (idempotent)."
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # Orders: recorded before they are sent; the stored row wins.
    def record_order(self, order: Order) -> Order:
        "Record `order` before it is sent; an existing id returns the stored order unchanged."
        if not isinstance(order, Order):
            raise TypeError(f"record_order needs an Order, got {type(order).__name__}")
        doc = order.to_dict()
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (order.client_order_id, order.intent.symbol, order.status, order.broker_order_id,
                        json.dumps(doc), doc["created_at"], utc_now().isoformat()))
        return self.get_order(order.client_order_id)

    def get_order(self, client_order_id: str) -> Order | None:
        "The stored order, or None."
        row = self._conn.execute("SELECT status, broker_order_id, order_json FROM orders WHERE client_order_id = ?",
                               (client_order_id,)).fetchone()
        return None if row is None else _order_from_row(row)

    def update_order_status(self, client_order_id: str,  # the order to update
                            status: str,  # one of ORDER_STATUSES
                            broker_order_id: str | None = None,  # set when given, kept otherwise
                            ) -> Order:
        "Set an order's status (and broker id); unknown ids are an error."
        if status not in ORDER_STATUSES:
            raise ValueError(f"status={status!r} is not one of {', '.join(ORDER_STATUSES)}")
        with self._tx() as db:
            cur = db.execute("UPDATE orders SET status = ?, broker_order_id = COALESCE(?, broker_order_id), "
                             "updated_at = ? WHERE client_order_id = ?",
                             (status, broker_order_id, utc_now().isoformat(), client_order_id))
            if cur.rowcount == 0:
                raise KeyError(f"no order with client_order_id {client_order_id!r}; record_order it first")
        return self.get_order(client_order_id)

    def open_orders(self) -> list[Order]:
        "Orders still working or of unknown outcome, oldest first."
        marks = ", ".join("?" * len(OPEN_STATUSES))
        rows = self._conn.execute(f"SELECT status, broker_order_id, order_json FROM orders WHERE status IN ({marks}) "
                                "ORDER BY created_at, rowid", OPEN_STATUSES)
        return [_order_from_row(r) for r in rows]


    # Fills: each exec_id counts once.
    def add_fill(self, fill: Fill) -> bool:
        "Store a fill once; True if it was new, False if its exec_id was already stored."
        if not isinstance(fill, Fill):
            raise TypeError(f"add_fill needs a Fill, got {type(fill).__name__}")
        doc = fill.to_dict()
        with self._tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?)",
                             (fill.exec_id, fill.client_order_id, doc["ts"], json.dumps(doc)))
            return cur.rowcount == 1

    def fills_for(self, client_order_id: str) -> list[Fill]:
        "An order's fills in execution order."
        rows = self._conn.execute("SELECT fill_json FROM fills WHERE client_order_id = ? ORDER BY ts, rowid",
                                (client_order_id,))
        return [Fill.from_dict(json.loads(r[0])) for r in rows]

    # Positions: one per (asset, symbol).
    def upsert_position(self, position: Position) -> None:
        "Insert or replace the position of (asset, symbol)."
        if not isinstance(position, Position):
            raise TypeError(f"upsert_position needs a Position, got {type(position).__name__}")
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?)",
                       (position.asset, position.symbol, json.dumps(position.to_dict()), utc_now().isoformat()))

    def delete_position(self, asset: str, symbol: str) -> bool:
        "Remove the position of (asset, symbol); True if there was one."
        with self._tx() as db:
            return db.execute("DELETE FROM positions WHERE asset = ? AND symbol = ?", (asset, symbol)).rowcount == 1

    def positions(self) -> list[Position]:
        "All stored positions, by asset and symbol."
        rows = self._conn.execute("SELECT position_json FROM positions ORDER BY asset, symbol")
        return [Position.from_dict(json.loads(r[0])) for r in rows]

    # Runtime events: append-only.
    def append_event(self, event: Event | str,  # a domain event, or an event name
                     payload: dict | None = None,  # the payload when `event` is a name
                     ) -> int:
        "Append an event; returns its id."
        if isinstance(event, Event):
            name, ts, doc = event.name, event.ts, event.to_dict()
        elif isinstance(event, str) and event:
            name, ts, doc = event, utc_now(), payload or {}
        else:
            raise TypeError(f"append_event needs an Event or a non-empty name, got {event!r}")
        try:
            text = json.dumps(doc, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"event {name!r} payload is not JSON-serialisable: {exc}") from None
        with self._tx() as db:
            return db.execute("INSERT INTO events (ts, event, payload) VALUES (?, ?, ?)",
                              (utc(ts).isoformat(), name, text)).lastrowid

    def events(self, since_id: int = 0) -> list[StoredEvent]:
        "Events with id > `since_id`, oldest first."
        rows = self._conn.execute("SELECT id, ts, event, payload FROM events WHERE id > ? ORDER BY id", (since_id,))
        return [StoredEvent(i, ts, name, json.loads(p)) for i, ts, name, p in rows]

    # Snapshots: the engine's checkpoint, one JSON document per key.
    def save_snapshot(self, key: str, doc: dict) -> None:
        "Replace the snapshot `key` with `doc` (JSON, no NaN) in one transaction."
        try:
            text = json.dumps(doc, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"snapshot {key!r} is not JSON-serialisable: {exc}") from None
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)", (key, text, utc_now().isoformat()))

    def load_snapshot(self, key: str) -> dict | None:
        "The snapshot `key`, or None."
        row = self._conn.execute("SELECT doc FROM snapshots WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])


class _Transaction:
    "BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error."

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


# %% [markdown]
# ## Opening

# %%
with OrderStore(tmp / "a" / "orders.sqlite") as store:
    test_eq(store.schema_version, SCHEMA_VERSION)
    test_eq(store.integrity_check(), "ok")
    test_eq(store._db.execute("PRAGMA journal_mode").fetchone()[0], "wal")
    test_eq(store._db.execute("PRAGMA synchronous").fetchone()[0], 2)  # 2 = FULL
test_fail(lambda: store.integrity_check(), contains="closed")

newer = tmp / "newer.sqlite"
sqlite3.connect(newer).execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
test_fail(lambda: OrderStore(newer), contains="newer than this code's")

garbage = tmp / "garbage.sqlite"
garbage.write_bytes(b"not a database at all, but 60 bytes of something a user cares about")
test_fail(lambda: OrderStore(garbage), contains="is not a usable SQLite database")
test_eq(garbage.read_bytes()[:20], b"not a database at al")  # left untouched

# %% [markdown]
# ## Orders
# `record_order` inserts or finds; the stored row wins, so the caller always continues with what is
# on disk. Status and the broker's order id live in their own columns (they change); the order's JSON
# keeps everything that does not.

# %%
intent = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=1.5, strategy_id="rsi2", notional=100.0)
cid = client_order_id("rsi2", "BTCUSDT", "2024-03-01T08:00:00Z")
order = Order(cid, intent, created_at="2024-03-01T08:00:01Z")
store = OrderStore(tmp / "orders.sqlite")
test_eq(store.record_order(order), order)
again = Order(cid, OrderIntent(**{**intent.to_dict(), "notional": 999.0}))  # same id, different content
test_eq(store.record_order(again), order)  # the stored row wins: no duplicate, no overwrite
test_eq(store._db.execute("SELECT COUNT(*) FROM orders").fetchone()[0], 1)
test_eq(store.get_order("nope"), None)

test_eq(store.update_order_status(cid, "submitted", "b-1").broker_order_id, "b-1")
test_eq(store.update_order_status(cid, "partially_filled").broker_order_id, "b-1")  # kept when not given
test_eq([o.client_order_id for o in store.open_orders()], [cid])
test_eq(store.update_order_status(cid, "filled").status, "filled")
test_eq(store.open_orders(), [])
test_fail(lambda: store.update_order_status(cid, "done"), contains="status='done' is not one of")
test_fail(lambda: store.update_order_status("ghost", "filled"), contains="no order with client_order_id 'ghost'")

# %% [markdown]
# ## Fills
# `add_fill` returns whether the fill was new. Callers update positions and P&L only on `True`.

# %%
f1 = Fill("e-1", cid, "BTCUSDT", "buy", 0.001, 61000.0, 0.05, "2024-03-01T08:00:02Z")
f2 = Fill("e-2", cid, "BTCUSDT", "buy", 0.0006, 61010.0, 0.03, "2024-03-01T08:00:03Z")
test_eq([store.add_fill(f) for f in (f2, f1, f1, f2)], [True, True, False, False])
test_eq(store.fills_for(cid), [f1, f2])
test_close(sum(f.qty for f in store.fills_for(cid)), 0.0016)
test_eq(store.fills_for("other"), [])

# %% [markdown]
# ## Positions
# One position per (asset, symbol): netting is how both venues report them.

# %%
pos = Position("p-1", "crypto_spot", "BTCUSDT", 0.0016, 61004.0, 60100.0, None, "paper", "2024-03-01T08:00:03Z")
store.upsert_position(pos)
moved = Position.from_dict({**pos.to_dict(), "sl": 60500.0})
store.upsert_position(moved)
test_eq(store.positions(), [moved])
test_eq((store.delete_position("crypto_spot", "BTCUSDT"), store.delete_position("crypto_spot", "BTCUSDT")),
        (True, False))
test_eq(store.positions(), [])

# %% [markdown]
# ## Runtime events
# Append-only. A domain `Event` is stored in its `to_dict` form; other runtime facts (a kill switch,
# a mode change) are a name and a JSON payload. `events(since_id)` lets a reader resume where it
# stopped.

# %%
i1 = store.append_event(OrderFilled("2024-03-01T08:00:02Z", f1))
i2 = store.append_event(PositionOpened("2024-03-01T08:00:03Z", pos))
i3 = store.append_event("kill_switch", {"asset": "crypto_spot", "on": True})
test_eq([e.event for e in store.events()], ["OrderFilled", "PositionOpened", "kill_switch"])
test_eq([e.id for e in store.events(since_id=i1)], [i2, i3])
test_eq(store.events()[0].domain(), OrderFilled("2024-03-01T08:00:02Z", f1))
test_eq(store.events(since_id=i2)[0].payload, {"asset": "crypto_spot", "on": True})
test_fail(lambda: store.append_event("bad", {"x": float("nan")}), contains="not JSON-serialisable")
test_fail(lambda: store.append_event(42), contains="needs an Event or a non-empty name")

# %% [markdown]
# ## Snapshots
# The engine checkpoints what it cannot rebuild from orders and fills — the paper client's book, the
# portfolios, the sessions and the replay cursor — as one JSON document per key, replaced in one
# transaction, so a crash leaves the previous checkpoint or the new one, never a mixture.

# %%
store.save_snapshot("engine", {"cursor": 41, "cash": 1000.5})
store.save_snapshot("engine", {"cursor": 42, "cash": 999.25})
test_eq(store.load_snapshot("engine"), {"cursor": 42, "cash": 999.25})
test_eq(store.load_snapshot("nothing"), None)
test_fail(lambda: store.save_snapshot("engine", {"x": float("nan")}), contains="not JSON-serialisable")
test_eq(store.load_snapshot("engine")["cursor"], 42)  # a refused snapshot leaves the last one

# %% [markdown]
# A version-1 file (before snapshots) is migrated in place:

# %%
v1 = tmp / "v1.sqlite"
_db = sqlite3.connect(v1)
_db.executescript(_SCHEMA + "PRAGMA user_version=1;")
_db.close()
with OrderStore(v1) as migrated:
    test_eq(migrated.schema_version, SCHEMA_VERSION)
    migrated.save_snapshot("k", {"a": 1})
    test_eq(migrated.load_snapshot("k"), {"a": 1})

# %% [markdown]
# Everything survives closing and reopening:

# %%
store.close()
with OrderStore(tmp / "orders.sqlite") as again:
    test_eq(again.get_order(cid).status, "filled")
    test_eq(again.fills_for(cid), [f1, f2])
    test_eq(len(again.events()), 3)
    test_eq(again.integrity_check(), "ok")
