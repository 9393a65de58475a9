# %% [markdown]
# # Runtime controller
#
# > Modes and safety switches: per-asset live behind a preview token and the validation gate, kill switches, stop modes and the hourly paper recap — each change saved, logged and audited.

# %%
#| default_exp runtime.controller

# %% [markdown]
# The controller decides; it places no order (the router does) and computes no P&L (the reconciler
# does). It is the only writer of the safety flags of `RuntimeState` (seed 003 §19 and *Mode & Safety
# Logic*):
#
# - **boot**: no configuration boots an asset able to open a live position: assets boot in paper, and one
#   found live in `runtime.json` comes back live *close-only* until an operator confirms it again;
# - **live per asset** needs two confirmations — a preview (`GET /diff/{asset}`) that issues a
#   short-lived, single-use token, and a confirm (`POST /diff/confirm/{asset}`) that presents it — plus
#   the master switch on, no kill switch on, and a passed latest validation for *every* strategy the
#   asset trades;
# - **kill switch** (global or per asset; manual, or automatic after `SAFETY.CONSECUTIVE_LOSS_KILL`
#   consecutive live losses): no new live position (`can_open` says why); protective orders stay; the
#   paper book keeps trading. The flag is in `runtime.json`, so it survives a restart;
# - **master switch** `SAFETY.LIVE_TRADING_ENABLED`: off, no asset may be live-opening; turned off while
#   running, every live asset becomes close-only at once;
# - **stop**: `keep_open` (no new live; keep SL/TP) or `close_all`; the engine acts on `stop_mode`.
#
# Every change mutates the state, saves it atomically, writes an event and, when an audit log is given,
# appends a hash-chained audit record. A confirmation token is a bearer secret: only its SHA-256 is kept
# in memory, and only an 8-character prefix of that hash (`preview_id`) is ever logged.

# %%
#| export
from __future__ import annotations

import datetime as dt
import hashlib
import math
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tradingbot.config import ASSETS, get_key
from tradingbot.execution.model import utc_now
from tradingbot.jsonlog import log_event
from tradingbot.runtime.audit import AuditLog
from tradingbot.runtime.state import AssetState, RuntimeState, save_state, state_path
from tradingbot.validation.gate import live_eligibility

# %%
#| hide
import json
import tempfile

from fastcore.test import test_eq, test_fail

from tradingbot import jsonlog
from tradingbot.config import set_key
from tradingbot.jsonlog import read_jsonl
from tradingbot.runtime.state import load_state

_events = jsonlog.configure(tempfile.mkdtemp())  # the examples' events go to a scratch log we can read


class Clock:
    "A hand-moved clock, so token expiry and the hourly recap can be shown without waiting."

    def __init__(self):
        self.now = dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc)

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += dt.timedelta(seconds=seconds)


def events(name):
    "The example events called `name`."
    return [r for r in read_jsonl(_events.path_for(jsonlog.utc_now())) if r["event"] == name]


def scratch():
    "A fresh state file and audit log in a temp directory."
    d = Path(tempfile.mkdtemp())
    return d / "runtime.json", AuditLog(d / "audit.jsonl")


# %% [markdown]
# ## Confirmation tokens
# A preview token proves that the operator saw the would-be live orders of *this* asset a moment ago.
# The controller keeps `sha256(token) -> (asset, expires_at)`: a leaked memory dump or log cannot replay
# it, and a token issued for one asset cannot switch on another.

# %%
#| export
STOP_MODES = ("keep_open", "close_all")


def token_hash(token: str) -> str:
    "SHA-256 hex of a confirmation token (what is kept instead of the token)."
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingConfirmation:
    "What is remembered about an issued token: never the token itself."
    asset: str
    expires_at: dt.datetime

    def expired(self, now: dt.datetime) -> bool:
        "True once `now` has reached the expiry."
        return now >= self.expires_at


# %%
p = PendingConfirmation("forex", dt.datetime(2024, 1, 1, 12, 2, tzinfo=dt.timezone.utc))
test_eq(p.expired(dt.datetime(2024, 1, 1, 12, 1, 59, tzinfo=dt.timezone.utc)), False)
test_eq(p.expired(dt.datetime(2024, 1, 1, 12, 2, tzinfo=dt.timezone.utc)), True)  # the expiry instant is stale
test_eq(len(token_hash("abc")), 64)
test_eq(token_hash("abc") == token_hash("abd"), False)


# %% [markdown]
# ## The controller
# One class, read top-down as the operator meets it:
#
# - `_commit` is the one path for a state change (save, event, audit); `_record` records a refusal without
#   touching the state. Public methods take a lock: the dashboard and the engine call from different threads.
# - **start and stop**: `start` applies the boot rule to a state that came from disk — an asset that was live
#   comes back live *close-only* (its positions and protective orders are still managed) until an operator
#   confirms it again; `load_state` already did that, `start` records it. `stop` only records the operator's
#   choice; closing positions is the engine's job, and no book opens positions from then on.
# - **preview and enable**: the two confirmations; `enable_live` runs its checks from the cheapest to the most
#   expensive, and the first failure is the answer. The gate is asked about *every* strategy the asset trades,
#   for *this* asset, with today's rules.
# - **the master switch**, read each time: turning `SAFETY.LIVE_TRADING_ENABLED` off while the bot runs makes
#   every live asset close-only at once (`enforce_master_switch`, which the engine calls every bar), audited.
# - **kill switches and close-only** act on the live book; the paper book keeps trading (`can_open(asset,
#   "paper")` answers only to a stop).

# %%
#| export
def _mode(s: AssetState) -> str:
    "An asset's trading mode as shown to people."
    if not s.live_enabled:
        return "paper"
    return "live_close_only" if s.close_only else "live"


def _live_allowed() -> bool:
    "The master switch, read each time: an operator may turn it off while the bot runs."
    return bool(get_key("SAFETY.LIVE_TRADING_ENABLED", False))


def _verdict(answer) -> tuple[bool, str]:
    "A gate's answer as (ok, reason): gates may answer a bool, or (bool, reason)."
    return (bool(answer[0]), str(answer[1])) if isinstance(answer, tuple) else (bool(answer), "")


class Controller:
    "Modes, live toggles, kill switches, master switch, stop mode and paper recap over one RuntimeState."

    def __init__(self,
                 state: RuntimeState,  # the state to govern (usually `load_state()`)
                 path: str | Path | None = None,  # runtime.json; None: `state_path()`
                 audit: AuditLog | None = None,  # hash-chained audit log, if any
                 gate: Callable = live_eligibility,  # (strategy id, asset) -> ok, or (ok, reason): passed validation
                 clock: Callable[[], dt.datetime] = utc_now,  # tz-aware UTC now
                 live_venue: Callable[[str], bool] | None = None,  # asset -> a live venue client exists (None: all)
                 ):
        self.state, self.path, self.audit = state, Path(path or state_path()), audit
        self.gate, self.clock, self.live_venue = gate, clock, live_venue
        self.stop_mode: str | None = None
        self._pending: dict[str, PendingConfirmation] = {}  # sha256(token) -> confirmation
        self._lock = threading.RLock()

    # -- persistence and records -------------------------------------------------------------------
    def save(self) -> None:
        "Write the state atomically to `self.path`."
        save_state(self.state, self.path)

    def _asset(self, asset: str) -> AssetState:
        "The state of a known asset (created in paper if the file lacked it); ValueError otherwise."
        if asset not in ASSETS:
            raise ValueError(f"unknown asset {asset!r}; expected one of {', '.join(ASSETS)}")
        return self.state.assets.setdefault(asset, AssetState())

    def _record(self, event: str, **fields: Any) -> None:
        "Write the event and, when there is an audit log, its audit record."
        log_event(event, **fields)
        if self.audit is not None:
            self.audit.append(event, **fields)

    def _commit(self, event: str, **fields: Any) -> None:
        "Persist a state change, then record it (a crash in between leaves the safe, saved state)."
        self.save()
        self._record(event, **fields)

    def modes(self) -> dict[str, str]:
        "Each asset's mode: 'paper', 'live' or 'live_close_only'."
        return {a: _mode(s) for a, s in self.state.assets.items()}

    # -- start and stop -------------------------------------------------------------------------------
    def start(self) -> None:
        "The boot rule: every asset that was live comes back close-only; record the modes we start in."
        with self._lock:
            for asset in self.state.live_assets():
                s = self.state.assets[asset]
                if not s.close_only:
                    s.close_only = True
                    self._commit("live_restored_close_only", asset=asset,
                                 reason="boot: confirm again (preview and confirmation) to open live positions")
            self.stop_mode = None
            self._commit("runtime_started", modes=self.modes(), global_kill=self.state.global_kill,
                         killed=[a for a, s in self.state.assets.items() if s.kill],
                         live_trading_enabled=_live_allowed())

    def stop(self, mode: str = "keep_open",  # 'keep_open' or 'close_all'
             ) -> str:
        "Record the stop mode ('keep_open' or 'close_all') for the engine to act on."
        if mode not in STOP_MODES:
            raise ValueError(f"stop mode must be one of {', '.join(STOP_MODES)}, got {mode!r}")
        with self._lock:
            self.stop_mode = mode
            self._record("runtime_stopped", mode=mode, modes=self.modes())
        return mode

    def enforce_master_switch(self) -> list[str]:
        "With SAFETY.LIVE_TRADING_ENABLED off, make every live asset close-only now; the assets changed."
        if _live_allowed():
            return []
        with self._lock:
            changed = [a for a in self.state.live_assets() if not self.state.assets[a].close_only]
            for asset in changed:
                self.state.assets[asset].close_only = True
                self._commit("live_close_only", asset=asset, reason="SAFETY.LIVE_TRADING_ENABLED was turned off")
            return changed

    # -- the two confirmations ------------------------------------------------------------------------
    def preview(self, asset: str,  # the asset to switch live
                intents: list[dict] | None = None,  # the would-be live orders (the diff engine builds them)
                ) -> dict:
        "Issue a single-use confirmation token for `asset` with the would-be live intents."
        with self._lock:
            self._asset(asset)
            now = self.clock()
            self._drop_expired(now)
            token = secrets.token_urlsafe(32)
            digest = token_hash(token)
            expires = now + dt.timedelta(seconds=int(get_key("SAFETY.CONFIRMATION_TOKEN_TTL_S", 120)))
            self._pending[digest] = PendingConfirmation(asset, expires)
            self._record("live_preview_issued", asset=asset, preview_id=digest[:8], expires_at=expires,
                         intents=len(intents or []))
        return {"asset": asset, "token": token, "expires_at": expires.isoformat(), "intents": list(intents or []),
                "as_of": now.isoformat()}

    def _drop_expired(self, now: dt.datetime) -> None:
        "Forget tokens past their expiry (they could only be refused)."
        for digest in [d for d, p in self._pending.items() if p.expired(now)]:
            del self._pending[digest]

    def _token_problem(self, asset: str, token: str | None) -> str:
        "Why `token` cannot confirm `asset` ('' when it can)."
        if not token:
            return "no confirmation token: preview the live orders first (GET /diff/{asset})"
        pending = self._pending.get(token_hash(token))
        if pending is None:
            return "unknown or already used confirmation token: preview again"
        if pending.asset != asset:
            return f"confirmation token was issued for {pending.asset}, not {asset}"
        if pending.expired(self.clock()):
            del self._pending[token_hash(token)]
            return f"stale confirmation token (expired at {pending.expires_at.isoformat()}): preview again"
        return ""

    def _validation_problem(self, asset: str) -> str:
        "Why the asset's strategies do not allow live trading ('' when they do)."
        strategies = get_key(f"assets.{asset}.strategies", []) or []
        if not strategies:
            return f"{asset} has no strategies (assets.{asset}.strategies): nothing validated to trade live"
        answers = {sid: _verdict(self.gate(sid, asset)) for sid in strategies}
        failed = [sid for sid, (ok, _) in answers.items() if not ok]
        if not failed:
            return ""
        why = "; ".join(f"{sid}: {answers[sid][1]}" for sid in failed if answers[sid][1])
        return f"no passed latest validation for strategy {', '.join(failed)}" + (f" ({why})" if why else "")

    def _enable_problem(self, asset: str, token: str | None) -> str:
        "The first reason live trading may not start for `asset` ('' when it may)."
        if asset not in ASSETS:
            return f"unknown asset {asset!r}"
        if self.state.global_kill:
            return "global kill switch is on"
        if self._asset(asset).kill:
            return f"kill switch is on for {asset}"
        if not _live_allowed():
            return "SAFETY.LIVE_TRADING_ENABLED is false"
        if self.live_venue is not None and not self.live_venue(asset):
            return f"no live venue client for {asset}: the bot cannot reach its market"
        return self._token_problem(asset, token) or self._validation_problem(asset)

    def enable_live(self, asset: str,  # the asset to switch live
                    token: str | None,  # the token of a fresh preview
                    ) -> tuple[bool, str]:
        "Switch `asset` to live if every check passes; (ok, reason) either way."
        with self._lock:
            reason = self._enable_problem(asset, token)
            preview_id = token_hash(token)[:8] if token else None
            if reason:
                self._record("live_enable_refused", asset=asset, reason=reason, preview_id=preview_id)
                return False, reason
            del self._pending[token_hash(token)]  # single use
            s = self.state.assets[asset]
            s.live_enabled, s.close_only = True, False
            self._commit("live_enabled", asset=asset, preview_id=preview_id, modes=self.modes())
        return True, f"{asset} is live"

    # -- disable, kill switches -------------------------------------------------------------------------
    def disable_live(self, asset: str,  # the asset
                     close_only: bool = False,  # stay live but only close (else back to paper)
                     ) -> None:
        "Back to paper, or (close_only) stay live but only close positions."
        with self._lock:
            s = self._asset(asset)
            s.live_enabled, s.close_only = (s.live_enabled, True) if close_only else (False, False)
            self._commit("live_disabled", asset=asset, close_only=close_only, mode=_mode(s))

    def set_global_kill(self, active: bool,  # on or off
                        reason: str = "manual",  # why, for the audit log
                        ) -> None:
        "Turn the global kill switch on (no new live position anywhere) or off."
        with self._lock:
            self.state.global_kill = bool(active)
            self._commit("kill_switch", scope="global", active=bool(active), reason=reason)

    def set_asset_kill(self, asset: str,  # the asset
                       active: bool,  # on or off
                       reason: str = "manual",  # why, for the audit log
                       ) -> None:
        "Turn one asset's kill switch on or off (off also resets its loss streak)."
        with self._lock:
            s = self._asset(asset)
            s.kill = bool(active)
            if not active:
                s.consecutive_losses = 0
            self._commit("kill_switch", scope="asset", asset=asset, active=bool(active), reason=reason)

    # -- may a book open? -------------------------------------------------------------------------------
    def can_open(self, asset: str,  # the asset
                 mode: str = "live",  # the book: 'live' answers to every switch, 'paper' only to a stop
                 ) -> tuple[bool, str]:
        "(True, 'ok') if the asset's `mode` book may open or grow a position, else (False, why)."
        if mode not in ("paper", "live"):
            raise ValueError(f"mode must be 'paper' or 'live', got {mode!r}")
        s = self._asset(asset)
        if self.stop_mode:
            return False, f"trading stopped ({self.stop_mode})"
        if mode == "paper":  # training runs regardless of the live state (seeds: 'paper continues')
            return True, "ok"
        if self.state.global_kill:
            return False, "global kill switch is on"
        if s.kill:
            return False, f"kill switch is on for {asset}"
        if not s.live_enabled:
            return False, f"{asset} is not live"
        if not _live_allowed():
            return False, "SAFETY.LIVE_TRADING_ENABLED is false"
        if s.close_only:
            return False, f"{asset} is close-only"
        if s.broker_desync:
            return False, f"{asset}: broker state out of sync, reconcile first"
        return True, "ok"

    def is_live(self, asset: str,  # the asset
                ) -> bool:
        "True when `asset` trades live (close-only included): it has a live book."
        s = self.state.assets.get(asset)
        return bool(s and s.live_enabled)

    # -- automatic kill -------------------------------------------------------------------------------
    def record_trade_result(self, asset: str,  # the asset
                            is_live: bool,  # the trade was live (paper results never count)
                            pnl_after_fees: float,  # its realised P&L
                            ) -> bool:  # True when this result killed the asset
        "Count live losses; kill the asset on reaching SAFETY.CONSECUTIVE_LOSS_KILL (returns True then)."
        if isinstance(pnl_after_fees, bool) or not isinstance(pnl_after_fees, (int, float)) \
                or not math.isfinite(pnl_after_fees):
            raise ValueError(f"pnl_after_fees must be a finite number, got {pnl_after_fees!r}")
        with self._lock:
            s = self._asset(asset)
            if not is_live:
                return False
            s.consecutive_losses = s.consecutive_losses + 1 if pnl_after_fees < 0 else 0
            limit = int(get_key("SAFETY.CONSECUTIVE_LOSS_KILL", 3))
            if s.consecutive_losses < limit or s.kill:
                self.save()
                return False
            self.set_asset_kill(asset, True, reason=f"auto: {s.consecutive_losses} consecutive live losses")
            return True

    # -- recap and the UI's view ------------------------------------------------------------------------
    def recap_due(self, now: dt.datetime | None = None,  # default: the clock
                  ) -> bool:
        "True when no recap was made in the last hour."
        last = self.state.last_recap
        return last is None or (now or self.clock()) - last >= RECAP_EVERY

    def recap(self, stats: dict,  # the paper figures to report
              now: dt.datetime | None = None,  # default: the clock
              ) -> dict:
        "Log the paper recap `stats`, remember when, save; return the event as written."
        with self._lock:
            self.state.last_recap = now or self.clock()
            self.save()
            return log_event("paper_recap", **stats)

    def get_state(self) -> dict:
        "The state as JSON-able data for the UI (no token, no secret)."
        doc = self.state.model_dump(mode="json")
        return {**doc, "stop_mode": self.stop_mode, "modes": self.modes(), "live_trading_enabled": _live_allowed(),
                "pending_confirmations": len(self._pending)}


RECAP_EVERY = dt.timedelta(hours=1)

# %%
path, audit = scratch()
c = Controller(RuntimeState.default(), path, audit)
test_eq(c.modes(), {a: "paper" for a in ASSETS})
test_fail(lambda: c._asset("stocks"), contains="unknown asset 'stocks'")
c._commit("example_change", asset="forex")
test_eq(json.loads(path.read_text())["global_kill"], False)  # saved
test_eq(events("example_change")[-1]["asset"], "forex")
test_eq(read_jsonl(audit.path)[-1]["event"], "example_change")

# %% [markdown]
# ## Start and stop
# A state from disk with a live asset boots it close-only — still live, so its positions and stops are
# managed, but unable to open until an operator confirms again (whatever the master switch says). `stop`
# only records the operator's choice; closing positions is the engine's job, and no book opens
# positions from then on.

# %%
path, audit = scratch()
s = RuntimeState.default()
s.assets["crypto_spot"].live_enabled = True  # e.g. a state written by hand, or before the boot rule
c = Controller(s, path, audit)
c.start()
test_eq(c.modes()["crypto_spot"], "live_close_only")
test_eq((load_state(path).assets["crypto_spot"].live_enabled, c.can_open("crypto_spot")),
        (True, (False, "SAFETY.LIVE_TRADING_ENABLED is false")))
test_eq(events("runtime_started")[-1]["modes"]["crypto_spot"], "live_close_only")
test_eq(read_jsonl(audit.path)[0]["event"], "live_restored_close_only")
test_eq(c.stop("close_all"), "close_all")
test_eq(c.stop_mode, "close_all")
test_fail(lambda: c.stop("panic"), contains="stop mode must be one of keep_open, close_all")
test_eq(c.stop_mode, "close_all")  # a bad mode changes nothing

# %% [markdown]
# ## Preview: the first confirmation
# The preview returns the would-be live intents (the router builds them) with a fresh token. Issuing a
# token changes no saved state; it is logged with its hash prefix so the preview and the confirm can be
# matched in the logs.

# %%
clock = Clock()
c = Controller(RuntimeState.default(), *scratch(), clock=clock)
pv = c.preview("forex", [{"symbol": "EURUSD", "side": "buy", "notional": 100.0}])
test_eq((pv["asset"], pv["intents"][0]["symbol"], pv["as_of"]), ("forex", "EURUSD", "2024-05-01T12:00:00+00:00"))
test_eq(pv["expires_at"], "2024-05-01T12:02:00+00:00")  # default TTL 120 s
test_eq(list(c._pending), [token_hash(pv["token"])])  # only the hash is kept
test_eq(events("live_preview_issued")[-1]["preview_id"], token_hash(pv["token"])[:8])
test_fail(lambda: c.preview("stocks"), contains="unknown asset")

# %% [markdown]
# ## Enable live: the second confirmation
# The checks run from the cheapest to the most expensive, and the first failure is the answer, so the
# operator reads one clear reason. A token is consumed only by a success; an expired one is forgotten.
# The gate is asked about *every* strategy the asset trades, and all that fail are named: a strategy that
# never passed validation must not ride live on the back of one that did. An asset with no strategy has
# nothing validated, so it is refused too.

# %% [markdown]
# The default configuration keeps the master switch off, so even a perfect confirmation is refused:

# %%
c = Controller(RuntimeState.default(), *scratch(), gate=lambda sid, asset: True, clock=Clock())
ok, why = c.enable_live("forex", c.preview("forex")["token"])
test_eq((ok, why), (False, "SAFETY.LIVE_TRADING_ENABLED is false"))
test_eq(events("live_enable_refused")[-1]["reason"], why)

# %% [markdown]
# With the switch on (restored afterwards), each missing piece is named; then the happy path, once:

# %%
_forex_strategies = get_key("assets.forex.strategies")
set_key("SAFETY.LIVE_TRADING_ENABLED", True)
try:
    clock = Clock()
    passed = {"rsi2"}
    c = Controller(RuntimeState.default(), *scratch(), gate=lambda sid, asset: sid in passed, clock=clock)
    test_eq(c.enable_live("forex", None)[1], "no confirmation token: preview the live orders first (GET /diff/{asset})")
    test_eq(c.enable_live("forex", "made-up")[1], "unknown or already used confirmation token: preview again")
    test_eq(c.enable_live("forex", c.preview("crypto_spot")["token"])[1],
            "confirmation token was issued for crypto_spot, not forex")
    old = c.preview("forex")["token"]
    clock.advance(120)
    test_eq(c.enable_live("forex", old)[1].startswith("stale confirmation token"), True)
    set_key("assets.forex.strategies", ["rsi2", "ibs"])
    tok = c.preview("forex")["token"]
    test_eq(c.enable_live("forex", tok), (False, "no passed latest validation for strategy ibs"))
    passed.add("ibs")
    test_eq(c.enable_live("forex", tok), (True, "forex is live"))
    test_eq(c.enable_live("forex", tok)[1], "unknown or already used confirmation token: preview again")
    test_eq((c.state.assets["forex"].live_enabled, c.state.assets["forex"].close_only), (True, False))
finally:
    set_key("SAFETY.LIVE_TRADING_ENABLED", False)
    set_key("assets.forex.strategies", _forex_strategies)

# %% [markdown]
# ## Disable live, kill switches
# `disable_live(asset, close_only=True)` keeps the asset live but closing only, so its open positions
# and their protective orders are still managed; without `close_only` it goes back to paper. A kill is a
# flag beside the mode, not a mode: releasing it restores exactly what was there, and resets the loss
# counter so the next single loss does not re-trigger an automatic kill at once.

# %% [markdown]
# ## May a book open a position?
# `can_open(asset, mode)` answers for new (opening or growing) orders of one book; closing orders and
# protective SL/TP are always allowed. The **paper** book answers only to a stop — the kill switch, the
# master switch and close-only act on the **live** book, and training goes on. The master switch is read
# at every call, and `enforce_master_switch` turns a live asset close-only the moment it is off.

# %%
path, audit = scratch()
c = Controller(RuntimeState.default(), path, audit)
c.state.assets["forex"].live_enabled = c.state.assets["options"].live_enabled = True  # as enable_live leaves it
set_key("SAFETY.LIVE_TRADING_ENABLED", True)
try:
    test_eq(c.can_open("forex"), (True, "ok"))
    c.set_asset_kill("forex", True)
    test_eq((c.can_open("forex"), c.can_open("forex", "paper")), ((False, "kill switch is on for forex"), (True, "ok")))
    test_eq(c.can_open("options"), (True, "ok"))
    c.set_global_kill(True, reason="drill")
    test_eq(c.can_open("options"), (False, "global kill switch is on"))
    test_eq(Controller(load_state(path), path).can_open("options"), (False, "global kill switch is on"))  # survives
    c.set_global_kill(False); c.set_asset_kill("forex", False)
    c.state.assets["forex"].broker_desync = True
    test_eq(c.can_open("forex")[1], "forex: broker state out of sync, reconcile first")
    test_eq(c.can_open("crypto_spot"), (False, "crypto_spot is not live"))
    c.disable_live("options", close_only=True)
    test_eq((c.is_live("options"), c.can_open("options")), (True, (False, "options is close-only")))
    c.disable_live("options")
    test_eq((c.is_live("options"), c.modes()["options"]), (False, "paper"))
    c.state.assets["forex"].broker_desync = False
    set_key("SAFETY.LIVE_TRADING_ENABLED", False)  # the operator turns the master switch off while running
    test_eq((c.can_open("forex"), c.enforce_master_switch()), ((False, "SAFETY.LIVE_TRADING_ENABLED is false"),
                                                                ["forex"]))
    test_eq((c.modes()["forex"], read_jsonl(audit.path)[-1]["event"]), ("live_close_only", "live_close_only"))
finally:
    set_key("SAFETY.LIVE_TRADING_ENABLED", False)
c.stop("keep_open")
test_eq((c.can_open("crypto_spot", "paper"), c.can_open("forex")), ((False, "trading stopped (keep_open)"),) * 2)
test_eq([r["event"] for r in read_jsonl(audit.path)][:2], ["kill_switch", "kill_switch"])

# %% [markdown]
# ## Automatic kill after consecutive live losses
# Only live results count: paper losses are training, not money. A win or a break-even trade ends the
# streak. When the streak reaches `SAFETY.CONSECUTIVE_LOSS_KILL` the asset is killed (close-only) and the
# call returns True so the engine can notify; later losses while killed only grow the count.

# %%
path, _ = scratch()
c = Controller(RuntimeState.default(), path)
test_eq([c.record_trade_result("forex", True, x) for x in (-1, -2, 0.0, -1, -1)], [False] * 5)  # break-even resets
test_eq(c.record_trade_result("forex", False, -50.0), False)  # paper never counts
test_eq(c.state.assets["forex"].consecutive_losses, 2)
test_eq(c.record_trade_result("forex", True, -0.01), True)
test_eq((c.state.assets["forex"].kill, c.can_open("forex")[0]), (True, False))
test_eq(events("kill_switch")[-1]["reason"], "auto: 3 consecutive live losses")
test_eq(load_state(path).assets["forex"].kill, True)
test_fail(lambda: c.record_trade_result("forex", True, float("nan")), contains="finite number")

# %% [markdown]
# ## Hourly paper recap and the state for the UI
# `recap_due` is a clock question the engine asks each bar; `recap` writes the `paper_recap` event (the
# notifier forwards it) and saves the time, so a restart does not send a second recap within the hour.

# %%
clock = Clock()
path, _ = scratch()
c = Controller(RuntimeState.default(), path, clock=clock)
test_eq(c.recap_due(), True)
test_eq(c.recap({"trades": 12, "pnl": -3.5})["trades"], 12)
clock.advance(3599)
test_eq(c.recap_due(), False)
test_eq(Controller(load_state(path), path, clock=clock).recap_due(), False)  # remembered across a restart
clock.advance(1)
test_eq(c.recap_due(), True)
test_eq(events("paper_recap")[-1]["pnl"], -3.5)
st = c.get_state()
test_eq((st["last_recap"], st["stop_mode"], st["modes"]["forex"]), ("2024-05-01T12:00:00Z", None, "paper"))
test_eq(json.loads(json.dumps(st)) == st, True)
