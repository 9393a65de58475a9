"Fault tests for runtime.json: kill -9 while saving never leaves a torn file; bad files are refused and kept."
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import python
from tradingbot.runtime.state import RuntimeState, StateError, load_state, save_state

# A child that saves an ever-changing state in a tight loop until it is killed.
WRITER = """
import sys
from pathlib import Path
from tradingbot.runtime.state import RuntimeState, save_state
path = Path(sys.argv[1])
state = RuntimeState.default()
state.sessions = {"forex": {"notes": "x" * 20000}}  # big enough that a write takes more than one syscall
i = 0
while True:
    i += 1
    state.replay_cursor = {"feed": i}
    state.assets["forex"].consecutive_losses = i % 7
    save_state(state, path)
    if i == 1:
        print("ready", flush=True)
"""


def _kill_while_saving(path, delay: float) -> None:
    child = subprocess.Popen([python(), "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL


def test_sigkill_while_saving_never_leaves_a_torn_file(tmp_path):
    path = tmp_path / "runtime.json"
    cursors = []
    for k in range(24):
        _kill_while_saving(path, delay=0.002 * (k % 12))
        doc = json.loads(path.read_text())  # parses: never torn
        state = load_state(path)
        assert state.sessions["forex"]["notes"] == "x" * 20000
        cursors.append(state.replay_cursor["feed"])
    assert not list(tmp_path.glob("runtime.json.corrupt-*"))
    assert all(c >= 1 for c in cursors) and doc["schema_version"] == 1


def test_round_trip_keeps_every_field(tmp_path):
    state = RuntimeState.default()
    state.global_kill = True
    state.assets["options"].kill = True
    state.assets["options"].broker_desync = True
    state.replay_cursor = {"ibkr:EURUSD:1h": 1234}
    save_state(state, tmp_path / "runtime.json")
    assert load_state(tmp_path / "runtime.json") == state


@pytest.mark.parametrize("text, problem", [
    ("", "not valid JSON"),
    ("[1, 2]", "(top level)"),
    ('{"schema_version": 2}', "schema_version"),
    ('{"assets": {"forex": {"consecutive_losses": -3}}}', "assets.forex.consecutive_losses"),
    ('{"assets": {"forex": {"kill": true, "surprise": 1}}}', "assets.forex.surprise"),
])
def test_bad_file_is_quarantined_with_a_clear_error(tmp_path, text, problem):
    path = tmp_path / "runtime.json"
    path.write_text(text)
    with pytest.raises(StateError) as err:
        load_state(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    (aside,) = tmp_path.glob("runtime.json.corrupt-*")
    assert aside.read_text() == text
    assert load_state(path).live_assets() == []  # an unknown state never comes back live


def test_live_asset_restored_close_only_by_config(tmp_path, monkeypatch):
    path = tmp_path / "runtime.json"
    state = RuntimeState.default()
    state.assets["crypto_futures"].live_enabled = True
    save_state(state, path)
    got = load_state(path)
    assert got.assets["crypto_futures"].close_only and got.assets["crypto_futures"].live_enabled
    assert not got.assets["crypto_spot"].close_only


# A child that appends audit records until it is killed.
AUDIT_WRITER = """
import sys
from tradingbot.runtime.audit import AuditLog
log = AuditLog(sys.argv[1])
i = 0
while True:
    i += 1
    log.append("order_submitted", n=i, pad="y" * 5000)
    if i == 1:
        print("ready", flush=True)
"""


def test_sigkill_while_auditing_keeps_the_chain_resumable(tmp_path):
    from tradingbot.runtime.audit import AuditLog, verify_chain
    path = tmp_path / "audit.jsonl"
    for k in range(8):
        child = subprocess.Popen([python(), "-c", AUDIT_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.003 * k)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        log = AuditLog(path)  # cuts off a torn tail, if the kill left one
        assert verify_chain(path)[0], verify_chain(path)
        log.append("restarted", attempt=k)
    ok, line, reason = verify_chain(path)
    assert ok and line is None
