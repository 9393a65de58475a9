"""Crash test: `runners/live.py` killed with SIGKILL at random points of one replay, restarted each time.

At the end the interrupted run must equal an uninterrupted one at the same bar: the same orders (no
duplicate client order id), the same fills (none counted twice), the same positions, cash and equity;
runtime.json parses after every kill and SQLite's integrity check is ok.
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tradingbot.runtime.audit import verify_chain

from helpers import checkpoint_cursor

ROOT = Path(__file__).resolve().parents[1]
BARS = 12_000  # bars of the merged BTC + EUR/USD replay (both assets, all configured strategies)
KILLS = 20


def _start(state: Path, logs: Path) -> subprocess.Popen:
    env = {**os.environ, "TRADINGBOT_LOG_DIR": str(logs), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "runners" / "live.py"), "--state", str(state),
                             "--bars", str(BARS)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out


def _book(state: Path) -> dict:
    "What must match: orders, fills, the final snapshot's books; and the file's health."
    db = sqlite3.connect(state / "tradingbot.sqlite")
    orders = [r[0] for r in db.execute("SELECT client_order_id FROM orders ORDER BY client_order_id")]
    fills = {r[0]: json.loads(r[1]) for r in db.execute("SELECT exec_id, fill_json FROM fills")}
    snap = json.loads(db.execute("SELECT doc FROM snapshots WHERE key = 'engine'").fetchone()[0])
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    n_fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    db.close()
    return {"orders": orders, "fills": fills, "snap": snap, "integrity": integrity, "n_fills": n_fills}


def _kill_after(proc: subprocess.Popen, state: Path, target: int, extra: float) -> bool:
    """SIGKILL `proc` `extra` seconds after its checkpoint reaches `target`; False if it exited first.

    Kill points follow the replay's progress, not the wall clock, so a slow machine (a cold start
    that outlasts a fixed pause) still spreads the kills along the replay."""
    deadline = time.monotonic() + 120
    while checkpoint_cursor(state / "tradingbot.sqlite") < target:
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"no progress past bar {target} within 120 s"
        time.sleep(0.01)
    time.sleep(extra)  # land anywhere: mid-bar, mid-checkpoint, mid-log write
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path):
    reference = tmp_path / "reference"
    _finish(_start(reference / "state", reference / "logs"))
    ref = _book(reference / "state")
    assert ref["snap"]["cursor"] == BARS - 1 and len(ref["fills"]) > 100

    rng, crashed = random.Random(20261121), tmp_path / "crashed"
    state, cursors = crashed / "state", []
    for _ in range(KILLS):
        target = checkpoint_cursor(state / "tradingbot.sqlite") + rng.randint(50, 450)
        proc = _start(state, crashed / "logs")
        assert _kill_after(proc, state, target, rng.uniform(0.0, 0.05)), "the replay finished before the kill"
        json.loads((state / "runtime.json").read_text()) if (state / "runtime.json").exists() else None
        cursors.append(checkpoint_cursor(state / "tradingbot.sqlite"))
    # each kill came after fresh progress, so every kill landed at a different bar of the replay
    assert cursors == sorted(set(cursors)) and cursors[-1] < BARS - 1, cursors
    out = _finish(_start(state, crashed / "logs"))
    assert f"up to seq {BARS - 1}" in out

    got = _book(state)
    assert got["integrity"] == "ok"
    assert got["orders"] == ref["orders"]  # the same ids, each once (primary key), none under a new id
    assert got["n_fills"] == len(got["fills"]) == len(ref["fills"])
    assert got["fills"] == ref["fills"]  # no fill counted twice, none lost, same prices and quantities
    for part in ("books", "budgets", "cursor"):  # every book: paper venue, portfolio, session, symbols
        assert got["snap"][part] == ref["snap"][part], part
    state_doc = json.loads((state / "runtime.json").read_text())
    assert state_doc["replay_cursor"]["replay"] == BARS - 1

    # the audit log survived every kill (a torn last line is cut off at the restart) and saw every order
    audit = crashed / "logs" / "audit" / "audit.jsonl"
    assert verify_chain(audit)[0], verify_chain(audit)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    audited = {r["client_order_id"] for r in records if r["event"] in ("order_submitted", "order_refused")}
    assert set(got["orders"]) <= audited
    assert sum(r["event"] == "runtime_started" for r in records) == KILLS + 1  # one per start
