"""`runners/live.py` end to end on the bundled replay: default run, SIGTERM/SIGINT, resume, logs, a live feed."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tradingbot.jsonlog import read_jsonl

from helpers import checkpoint_cursor

ROOT = Path(__file__).resolve().parents[1]
LIVE = str(ROOT / "runners" / "live.py")
SEED_FIELDS = {"ts", "asset", "symbol", "side", "notional", "price", "sl", "tp", "fees", "pnl_u", "pnl_r", "points",
               "mode", "txid"}


def _env(tmp: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYBIT_", "IB_"))}
    return {**env, "TRADINGBOT_LOG_DIR": str(tmp / "logs"), "PYTHONUNBUFFERED": "1", **extra}


def _run(tmp: Path, *args: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, LIVE, "--state", str(tmp / "state"), *args], env=_env(tmp, **env),
                          capture_output=True, text=True, timeout=300)


def test_replay_writes_state_logs_and_summary(tmp_path):
    proc = _run(tmp_path, "--bars", "8000")
    assert proc.returncode == 0, proc.stderr
    assert "up to seq 7999" in proc.stdout
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines() if line.startswith(("crypto_spot", "forex"))}
    assert set(rows) == {"crypto_spot", "forex"}  # one summary row per replayed asset
    assert int(rows["crypto_spot"][1]) > 0  # trades
    state = json.loads((tmp_path / "state" / "runtime.json").read_text())
    assert state["replay_cursor"]["replay"] == 7999 and set(state["sessions"]) == {"crypto_spot", "forex"}
    assert (tmp_path / "state" / "tradingbot.sqlite").exists()
    trades = sorted((tmp_path / "logs" / "trades").glob("crypto_spot_trades_*.jsonl"))
    assert trades and trades[0].name[len("crypto_spot_trades_"):-len(".jsonl")].isdigit()
    closed = [r for r in read_jsonl(trades[0]) if r["event"] == "position_closed"]
    assert closed and SEED_FIELDS <= set(closed[0]) and closed[0]["mode"] == "paper"
    assert sum(r["fees"] for r in closed) > 0
    decisions = sorted((tmp_path / "logs" / "decisions").glob("crypto_spot_decisions_*.jsonl"))
    assert decisions and all("txid" in r and "reason" in r for r in read_jsonl(decisions[0]))
    audit = tmp_path / "logs" / "audit" / "audit.jsonl"
    check = subprocess.run([sys.executable, "-m", "tradingbot.runtime.audit", "verify", str(audit)],
                           capture_output=True, text=True)
    assert check.returncode == 0 and "chain intact" in check.stdout, check.stdout
    events = [r["event"] for r in read_jsonl(audit)]
    assert events[0] == "runtime_started" and events[-1] == "engine_stopped" and "order_submitted" in events


def _wait_for_progress(db_path: Path, proc: subprocess.Popen, bars: int = 5) -> None:
    "Wait until the engine has checkpointed a few bars, so the signal lands in the middle of the replay."
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint_cursor(db_path) >= bars:
            return
        time.sleep(0.05)
    raise AssertionError("the runner made no progress within 120 s, or exited early")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_state_and_exits_zero_then_resumes(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, LIVE, "--state", str(tmp_path / "state"), "--speed", "20000"],
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("replay:")
    _wait_for_progress(tmp_path / "state" / "tradingbot.sqlite", proc)  # a cold start on a slow machine takes a while
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "up to seq" in out
    stopped_at = json.loads((tmp_path / "state" / "runtime.json").read_text())["replay_cursor"]["replay"]
    assert stopped_at > 0
    again = _run(tmp_path, "--bars", str(stopped_at + 200))
    assert again.returncode == 0, again.stderr
    assert f"resuming after bar {stopped_at}" in again.stdout and f"up to seq {stopped_at + 199}" in again.stdout


def test_duration_stops_the_run(tmp_path):
    started = time.monotonic()
    proc = _run(tmp_path, "--speed", "1", "--duration", "2")  # real time: hourly bars would take hours
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60


def test_live_feed_without_keys_is_a_clear_error(tmp_path):
    proc = _run(tmp_path, "--feed", "live")
    assert proc.returncode == 2
    assert "BYBIT_API_KEY" in proc.stderr and "Traceback" not in proc.stderr
    with_keys = _run(tmp_path, "--feed", "live", BYBIT_API_KEY="k", BYBIT_API_SECRET="s", IB_HOST="127.0.0.1",
                     IB_PORT="4002")
    assert with_keys.returncode == 2 and "use --feed replay" in with_keys.stderr
    assert "s" not in with_keys.stderr.split("error:")[0]  # nothing but the message


def test_bad_flags_are_refused(tmp_path):
    proc = _run(tmp_path, "--bars", "0")
    assert proc.returncode == 2 and "--bars must be > 0" in proc.stderr


def test_damaged_state_files_are_a_clear_error_that_loses_nothing(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    db = state / "tradingbot.sqlite"
    db.write_bytes(b"these bytes are not SQLite")
    proc = _run(tmp_path, "--bars", "10")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "state error:" in proc.stderr and "tradingbot.sqlite is not a usable SQLite database" in proc.stderr
    assert db.read_bytes() == b"these bytes are not SQLite"  # the order records are never overwritten

    db.unlink()
    (state / "runtime.json").write_text("{")
    proc = _run(tmp_path, "--bars", "10")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "runtime.json: not valid JSON" in proc.stderr and "moved to runtime.json.corrupt-" in proc.stderr
    aside = list(state.glob("runtime.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{"  # kept for inspection
    again = _run(tmp_path, "--bars", "10")  # the next start is a fresh paper state
    assert again.returncode == 0, again.stderr
    assert "crypto_spot=paper" in again.stdout and "up to seq 9" in again.stdout


def test_a_state_dir_of_other_assets_is_refused_not_reset(tmp_path):
    first = _run(tmp_path, "--bars", "1500")
    assert first.returncode == 0, first.stderr
    db = tmp_path / "state" / "tradingbot.sqlite"
    before = db.read_bytes()
    proc = _run(tmp_path, "--bars", "3000", TRADINGBOT__ASSETS__FOREX__ENABLED="false")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "holds the books of crypto_spot: BTCUSDT; forex: EURUSD" in proc.stderr
    assert "given crypto_spot: BTCUSDT." in proc.stderr
    assert db.read_bytes() == before  # nothing was reset or overwritten
    again = _run(tmp_path, "--bars", "3000")  # the configuration that wrote it resumes
    assert again.returncode == 0 and "resuming after bar 1499" in again.stdout, again.stderr


def test_a_second_runner_on_the_same_state_dir_is_refused(tmp_path):
    first = subprocess.Popen([sys.executable, LIVE, "--state", str(tmp_path / "state"), "--speed", "20000"],
                             env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_progress(tmp_path / "state" / "tradingbot.sqlite", first)
        second = _run(tmp_path, "--bars", "10")
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"is in use by another runner (pid {first.pid})" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
    assert first.returncode == 0 and "up to seq" in out, err  # the first one was not disturbed
