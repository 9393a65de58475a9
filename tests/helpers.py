"""Shared by the tests: the engine's checkpointed cursor, read from outside; fills read as round trips; config keys
set for a block; a strategy that always wants in."""
import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from tradingbot.config import get_key, set_key
from tradingbot.strategies.base import Decision


def checkpoint_cursor(db_path: Path) -> int:
    "The last fully processed bar the engine has checkpointed in `db_path` (-1 before the first checkpoint)."
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute("SELECT doc FROM snapshots WHERE key = 'engine'").fetchone()
    except sqlite3.OperationalError:  # the file or its table is not there yet
        return -1
    return json.loads(row[0])["cursor"] if row else -1


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    "Entry and exit fill times of each round trip of a long-only book of one symbol."
    pos, rows, entry = 0.0, [], None
    for f in fills.itertuples():
        if pos == 0.0:
            entry = f.ts
        pos = round(pos + (f.qty if f.side == "buy" else -f.qty), 12)
        if pos == 0.0:
            rows.append((entry, f.ts))
    return pd.DataFrame(rows, columns=["entry_ts", "exit_ts"])


@contextmanager
def config_keys(keys: dict):
    "The in-memory configuration with `keys` set (dotted path -> value) for a block; every key put back after it."
    before = {k: get_key(k) for k in keys}
    for k, v in keys.items():
        set_key(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            set_key(k, v)


class AlwaysLong:
    "A strategy that wants a long on every bar, with a 3 % stop (what the engine asks of a strategy: id, latest)."
    strategy_id = "always_long"

    def latest(self, bars):
        return Decision(long_entry=True, stop_distance=0.03 * float(bars["close"][-1]))
