"Safety rules of the runtime controller: live needs a fresh token and a passed validation; kills survive restarts."
import datetime as dt
import json

import pytest

from tradingbot import jsonlog
from tradingbot.config import get_key, set_key
from tradingbot.jsonlog import read_jsonl
from tradingbot.runtime.audit import AuditLog, verify_chain
from tradingbot.runtime.controller import Controller
from tradingbot.runtime.state import RuntimeState, load_state

T0 = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)


class Clock:
    "A clock the test moves by hand."

    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def cfg():
    "set(key, value) on the in-memory config; every key is put back after the test."
    saved = {}

    def set_(key, value):
        saved.setdefault(key, get_key(key))
        set_key(key, value)

    yield set_
    for key, value in saved.items():
        set_key(key, value)


@pytest.fixture
def log_dir(tmp_path):
    "The event log of this test (the jsonlog writer is process-global, so point it here)."
    jsonlog.configure(tmp_path / "logs")
    return tmp_path / "logs"


@pytest.fixture
def live_on(cfg):
    "Master switch on and known strategies for forex (two) and options (none)."
    cfg("SAFETY.LIVE_TRADING_ENABLED", True)
    cfg("assets.forex.strategies", ["rsi2", "ibs"])
    cfg("assets.options.strategies", [])


def make(tmp_path, gate=lambda sid, asset: True, clock=None, state=None):
    "A controller over a temp runtime.json and audit log."
    audit = AuditLog(tmp_path / "audit.jsonl")
    return Controller(state or RuntimeState.default(), tmp_path / "runtime.json", audit, gate=gate,
                      clock=clock or Clock())


def events(log_dir, name):
    return [r for p in sorted(log_dir.rglob("*.jsonl")) for r in read_jsonl(p) if r["event"] == name]


# ---- enable_live refusals -------------------------------------------------------------------------

def test_refused_without_passed_validation_names_the_strategy(tmp_path, live_on, log_dir):
    c = make(tmp_path, gate=lambda sid, asset: sid == "rsi2")
    ok, why = c.enable_live("forex", c.preview("forex")["token"])
    assert (ok, why) == (False, "no passed latest validation for strategy ibs")
    assert not c.is_live("forex")
    assert events(log_dir, "live_enable_refused")[-1]["reason"] == why


def test_refused_when_asset_has_no_strategies(tmp_path, live_on):
    c = make(tmp_path)
    ok, why = c.enable_live("options", c.preview("options")["token"])
    assert not ok and why.startswith("options has no strategies")


def test_refused_by_real_gate_without_validation_records(tmp_path, live_on):
    c = Controller(RuntimeState.default(), tmp_path / "runtime.json")  # default gate: eligible_for_live
    ok, why = c.enable_live("forex", c.preview("forex")["token"])
    assert (ok, why) == (False, "no passed latest validation for strategy rsi2, ibs (rsi2: no validation record; "
                         "ibs: no validation record)")


def test_refused_without_token(tmp_path, live_on):
    c = make(tmp_path)
    for token in (None, ""):
        ok, why = c.enable_live("forex", token)
        assert not ok and why.startswith("no confirmation token")


def test_refused_with_unknown_token(tmp_path, live_on):
    c = make(tmp_path)
    c.preview("forex")
    assert c.enable_live("forex", "guessed")[1] == "unknown or already used confirmation token: preview again"


def test_refused_with_stale_token(tmp_path, live_on, cfg):
    cfg("SAFETY.CONFIRMATION_TOKEN_TTL_S", 60)
    clock = Clock()
    c = make(tmp_path, clock=clock)
    stale = c.preview("forex")["token"]
    clock.advance(60)  # exactly the TTL: stale
    ok, why = c.enable_live("forex", stale)
    assert not ok and why.startswith("stale confirmation token (expired at 2024-05-01T12:01:00+00:00)")
    assert c.enable_live("forex", stale)[1].startswith("unknown or already used")  # forgotten
    assert not c.is_live("forex")


def test_token_just_inside_ttl_is_accepted(tmp_path, live_on):
    clock = Clock()
    c = make(tmp_path, clock=clock)
    token = c.preview("forex")["token"]
    clock.advance(get_key("SAFETY.CONFIRMATION_TOKEN_TTL_S") - 1)
    assert c.enable_live("forex", token) == (True, "forex is live")


def test_refused_with_token_for_another_asset(tmp_path, live_on):
    c = make(tmp_path)
    token = c.preview("crypto_spot")["token"]
    assert c.enable_live("forex", token) == (False, "confirmation token was issued for crypto_spot, not forex")
    assert c.enable_live("crypto_spot", token)[0]  # still good for its own asset


def test_refused_with_global_kill(tmp_path, live_on):
    c = make(tmp_path)
    token = c.preview("forex")["token"]
    c.set_global_kill(True)
    assert c.enable_live("forex", token) == (False, "global kill switch is on")


def test_refused_with_asset_kill(tmp_path, live_on):
    c = make(tmp_path)
    token = c.preview("forex")["token"]
    c.set_asset_kill("forex", True)
    assert c.enable_live("forex", token) == (False, "kill switch is on for forex")
    assert c.enable_live("crypto_spot", c.preview("crypto_spot")["token"])[0]  # other assets unaffected


def test_refused_when_master_switch_off(tmp_path, cfg):
    cfg("SAFETY.LIVE_TRADING_ENABLED", False)
    c = make(tmp_path)
    assert c.enable_live("forex", c.preview("forex")["token"]) == (False, "SAFETY.LIVE_TRADING_ENABLED is false")


def test_refused_for_unknown_asset(tmp_path, live_on):
    c = make(tmp_path)
    assert c.enable_live("stocks", "x") == (False, "unknown asset 'stocks'")
    with pytest.raises(ValueError, match="unknown asset"):
        c.preview("stocks")


# ---- success -------------------------------------------------------------------------------------

def test_success_is_saved_audited_and_single_use(tmp_path, live_on, log_dir):
    c = make(tmp_path)
    c.state.assets["forex"].live_enabled = c.state.assets["forex"].close_only = True  # live, close-only
    token = c.preview("forex")["token"]
    assert c.enable_live("forex", token) == (True, "forex is live")
    assert c.is_live("forex") and c.can_open("forex") == (True, "ok")
    saved = json.loads((tmp_path / "runtime.json").read_text())["assets"]["forex"]  # as written, before a reload
    assert (saved["live_enabled"], saved["close_only"]) == (True, False)
    reloaded = load_state(tmp_path / "runtime.json").assets["forex"]  # a restart brings it back close-only
    assert (reloaded.live_enabled, reloaded.close_only) == (True, True)
    assert [r["event"] for r in read_jsonl(tmp_path / "audit.jsonl")][-1] == "live_enabled"
    assert verify_chain(tmp_path / "audit.jsonl")[0]
    assert events(log_dir, "live_enabled")[-1]["asset"] == "forex"
    c.disable_live("forex")
    assert c.enable_live("forex", token) == (False, "unknown or already used confirmation token: preview again")
    assert not c.is_live("forex")


def test_disable_live_close_only_keeps_managing_positions(tmp_path, live_on):
    c = make(tmp_path)
    c.enable_live("forex", c.preview("forex")["token"])
    c.disable_live("forex", close_only=True)
    assert c.is_live("forex") and c.can_open("forex") == (False, "forex is close-only")
    c.disable_live("forex")
    assert not c.is_live("forex") and c.get_state()["modes"]["forex"] == "paper"


# ---- start / stop --------------------------------------------------------------------------------

def test_start_brings_live_assets_back_close_only_whatever_the_master_switch(tmp_path, cfg, log_dir):
    for on in (False, True):
        cfg("SAFETY.LIVE_TRADING_ENABLED", on)
        state = RuntimeState.default()
        state.assets["crypto_spot"].live_enabled = True
        c = make(tmp_path, state=state)
        c.start()
        assert c.is_live("crypto_spot") and c.can_open("crypto_spot")[0] is False  # managed, never opening
        assert load_state(tmp_path / "runtime.json").assets["crypto_spot"].close_only
        assert events(log_dir, "runtime_started")[-1]["modes"]["crypto_spot"] == "live_close_only"


def test_start_keeps_live_assets_when_master_switch_on(tmp_path, live_on):
    state = RuntimeState.default()
    state.assets["crypto_spot"].live_enabled = state.assets["crypto_spot"].close_only = True
    c = make(tmp_path, state=state)
    c.start()
    assert c.get_state()["modes"]["crypto_spot"] == "live_close_only"


def test_stop_modes(tmp_path):
    c = make(tmp_path)
    assert c.stop() == "keep_open" and c.stop_mode == "keep_open"
    assert c.can_open("forex") == (False, "trading stopped (keep_open)")
    assert c.stop("close_all") == "close_all" and c.get_state()["stop_mode"] == "close_all"
    with pytest.raises(ValueError, match="stop mode must be one of keep_open, close_all"):
        c.stop("now")


# ---- restarts ------------------------------------------------------------------------------------

def test_global_kill_survives_restart(tmp_path):
    make(tmp_path).set_global_kill(True, reason="drill")
    path = tmp_path / "runtime.json"
    again = Controller(load_state(path), path)
    assert again.can_open("crypto_spot") == (False, "global kill switch is on")
    assert again.get_state()["global_kill"] is True


def test_asset_kill_survives_restart(tmp_path):
    make(tmp_path).set_asset_kill("forex", True)
    path = tmp_path / "runtime.json"
    again = Controller(load_state(path), path)
    assert again.can_open("forex") == (False, "kill switch is on for forex")
    assert again.can_open("forex", "paper") == (True, "ok")  # the paper book trades on
    assert again.can_open("crypto_spot") == (False, "crypto_spot is not live")


def test_releasing_kill_survives_restart(tmp_path):
    c = make(tmp_path)
    c.set_global_kill(True)
    c.set_global_kill(False)
    path = tmp_path / "runtime.json"
    assert Controller(load_state(path), path).can_open("forex") == (False, "forex is not live")  # no kill left


def test_live_asset_comes_back_close_only(tmp_path, live_on):
    c = make(tmp_path)
    c.enable_live("forex", c.preview("forex")["token"])
    path = tmp_path / "runtime.json"
    again = Controller(load_state(path), path)
    assert again.is_live("forex")
    assert again.can_open("forex") == (False, "forex is close-only")


# ---- automatic kill ------------------------------------------------------------------------------

def test_auto_kill_after_consecutive_live_losses(tmp_path, cfg, log_dir):
    cfg("SAFETY.CONSECUTIVE_LOSS_KILL", 3)
    c = make(tmp_path)
    assert [c.record_trade_result("forex", True, -1.0) for _ in range(2)] == [False, False]
    assert c.record_trade_result("forex", True, -1.0) is True
    assert c.can_open("forex") == (False, "kill switch is on for forex")
    assert events(log_dir, "kill_switch")[-1]["reason"] == "auto: 3 consecutive live losses"
    assert load_state(tmp_path / "runtime.json").assets["forex"].kill
    assert c.record_trade_result("forex", True, -1.0) is False  # already killed: reported once


def test_releasing_asset_kill_resets_the_streak(tmp_path, cfg):
    cfg("SAFETY.CONSECUTIVE_LOSS_KILL", 2)
    c = make(tmp_path)
    c.record_trade_result("forex", True, -1.0)
    assert c.record_trade_result("forex", True, -1.0) is True
    c.set_asset_kill("forex", False)
    assert c.record_trade_result("forex", True, -1.0) is False  # one loss after release is not a streak
    assert not c.state.assets["forex"].kill


def test_paper_losses_do_not_count(tmp_path, cfg):
    cfg("SAFETY.CONSECUTIVE_LOSS_KILL", 2)
    c = make(tmp_path)
    c.record_trade_result("forex", True, -1.0)
    assert [c.record_trade_result("forex", False, -100.0) for _ in range(5)] == [False] * 5
    assert c.state.assets["forex"].consecutive_losses == 1 and not c.state.assets["forex"].kill


def test_win_and_break_even_reset_the_streak(tmp_path, cfg):
    cfg("SAFETY.CONSECUTIVE_LOSS_KILL", 2)
    c = make(tmp_path)
    results = [(-1.0, False), (0.5, False), (-1.0, False), (0.0, False), (-1.0, False), (-1.0, True)]
    assert [c.record_trade_result("forex", True, pnl) for pnl, _ in results] == [k for _, k in results]


def test_loss_streak_is_per_asset_and_saved(tmp_path, cfg):
    cfg("SAFETY.CONSECUTIVE_LOSS_KILL", 2)
    c = make(tmp_path)
    assert not c.record_trade_result("forex", True, -1.0)
    assert not c.record_trade_result("crypto_spot", True, -1.0)
    path = tmp_path / "runtime.json"
    again = Controller(load_state(path), path)
    assert again.record_trade_result("forex", True, -1.0) is True  # the streak survived the restart
    assert not again.state.assets["crypto_spot"].kill


# ---- recap ---------------------------------------------------------------------------------------

def test_recap_once_per_hour(tmp_path, log_dir):
    clock = Clock()
    c = make(tmp_path, clock=clock)
    assert c.recap_due()
    c.recap({"trades": 7, "pnl_after_fees": 12.5})
    clock.advance(59 * 60)
    assert not c.recap_due()
    assert not c.recap_due(T0 + dt.timedelta(minutes=30))
    clock.advance(60)
    assert c.recap_due()
    c.recap({"trades": 9, "pnl_after_fees": -1.0})
    recaps = events(log_dir, "paper_recap")
    assert [(r["trades"], r["pnl_after_fees"]) for r in recaps] == [(7, 12.5), (9, -1.0)]
    assert load_state(tmp_path / "runtime.json").last_recap == T0 + dt.timedelta(hours=1)


# ---- secrets -------------------------------------------------------------------------------------

def test_token_never_written_anywhere(tmp_path, live_on, log_dir):
    c = make(tmp_path)
    refused = c.preview("crypto_spot")["token"]
    c.enable_live("forex", refused)  # refusal with a token in hand
    token = c.preview("forex")["token"]
    assert c.enable_live("forex", token)[0]
    c.recap({"trades": 1})
    written = [tmp_path / "runtime.json", tmp_path / "audit.jsonl", *log_dir.rglob("*")]
    texts = [p.read_text() for p in written if p.is_file()]
    assert len(texts) >= 3 and any("live_enabled" in t for t in texts)
    for secret in (token, refused):
        assert not any(secret in t for t in texts)
    assert token not in str(c.get_state())
