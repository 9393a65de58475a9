# %% [markdown]
# # Runtime state
#
# > `state/runtime.json`: what the bot must remember across a restart — per-asset modes and kill flags, replay cursors, paper sessions — written atomically and loaded safely.

# %%
#| default_exp runtime.state

# %% [markdown]
# The runtime controller keeps a small document that survives a crash or a restart (seed 003 §Restart
# recovery): per asset `live_enabled`, `close_only`, `kill`, `consecutive_losses`, `broker_desync`;
# the global kill flag; the time of the last paper recap; the replay cursor (the last fully processed bar
# sequence per feed); the paper sessions; and a `schema_version`.
#
# Three promises:
#
# - **never torn**: a save writes a temp file in the same directory, flushes, fsyncs, `os.replace`s it over
#   `runtime.json` and fsyncs the directory, so a reader (or a restart after `kill -9`) sees the old file
#   or the new one;
# - **never silently lost**: a file that does not parse or validate is moved aside as
#   `runtime.json.corrupt-<ts>`, never overwritten;
# - **never live by surprise**: a missing or quarantined file gives the default state (every asset paper),
#   and an asset that was live comes back close-only, always: only a fresh preview and confirmation
#   (`Controller.enable_live`) lets it open positions again.

# %%
#| export
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, Field, ValidationError

from tradingbot.config import ASSETS, AssetName, Strict, get_key
from tradingbot.fileio import atomic_write_text, fsync_dir
from tradingbot.jsonlog import log_event
from tradingbot.paths import workspace_path

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail

from tradingbot import jsonlog

jsonlog.configure(tempfile.mkdtemp())  # the examples' events stay out of the repository's logs/

# %% [markdown]
# ## The model
# Unknown keys are refused: a misspelt flag must not be read as "not set". Asset names are the four
# asset classes of the config.

# %%
#| export
SCHEMA_VERSION = 1


class AssetState(Strict):
    "What one asset must remember across a restart."
    live_enabled: bool = False
    close_only: bool = False
    kill: bool = False
    consecutive_losses: int = Field(0, ge=0)
    broker_desync: bool = False


class RuntimeState(Strict):
    "The whole of runtime.json."
    schema_version: Literal[1] = SCHEMA_VERSION
    global_kill: bool = False
    last_recap: AwareDatetime | None = None  # UTC time of the last hourly paper recap
    replay_cursor: dict[str, int] = {}  # feed id -> last fully processed bar seq
    sessions: dict[str, dict[str, Any]] = {}  # asset -> PaperSession.to_dict()
    assets: dict[AssetName, AssetState] = {}

    @classmethod
    def default(cls) -> RuntimeState:
        "Boot state: every asset in paper, nothing live, nothing killed."
        return cls(assets={a: AssetState() for a in ASSETS})

    def live_assets(self) -> list[str]:
        "Assets whose live trading is on."
        return [a for a, s in self.assets.items() if s.live_enabled]


# %%
s = RuntimeState.default()
test_eq(sorted(s.assets), sorted(ASSETS))
test_eq(s.live_assets(), [])
test_eq(s.assets["forex"].close_only, False)
test_fail(lambda: RuntimeState(assets={"stocks": AssetState()}), contains="stocks")
test_fail(lambda: AssetState(live=True), contains="live")  # a misspelt key is refused
test_fail(lambda: AssetState(consecutive_losses=-1), contains="greater than or equal to 0")
test_fail(lambda: RuntimeState(last_recap=dt.datetime(2024, 1, 1)), contains="timezone")  # a naive time is ambiguous


# %% [markdown]
# ## Saving atomically
# `os.replace` is atomic on POSIX, but only the directory fsync makes the rename itself durable after a
# power cut. A temp file left behind by a kill mid-write is harmless: it is never read, and its name
# starts with a dot.

# %%
#| export
class StateError(ValueError):
    "runtime.json could not be used; the message names the file and the problem."


def state_path() -> Path:
    "Default location: <state dir>/runtime.json ($TRADINGBOT_STATE_DIR honoured)."
    return workspace_path("state") / "runtime.json"


def save_state(state: RuntimeState,  # the state to persist
               path: str | Path | None = None,  # default state_path()
               ) -> Path:
    "Write `state` as JSON so a crash at any instant leaves the old file or the new one."
    path = Path(path or state_path())
    atomic_write_text(path, state.model_dump_json(indent=2) + "\n")
    return path


# %%
with tempfile.TemporaryDirectory() as d:
    s = RuntimeState.default()
    s.global_kill, s.replay_cursor = True, {"bybit:BTCUSDT:1h": 42}
    p = save_state(s, Path(d) / "runtime.json")
    test_eq(json.loads(p.read_text())["replay_cursor"], {"bybit:BTCUSDT:1h": 42})
    test_eq([f.name for f in Path(d).iterdir()], ["runtime.json"])  # no temp file left


# %% [markdown]
# ## Loading
# A missing file is a first boot: the default state. A file that is not JSON or breaks the model is
# moved aside as `runtime.json.corrupt-<ts>` and a `StateError` names the file, the problem and where the
# file went. With `on_corrupt="default"` the load carries on from the default state instead (every asset
# paper), after logging `runtime_state_quarantined`; a runner chooses this when it must come up
# unattended. Either way the next load finds no file and boots in paper, and the quarantined copy keeps
# everything the operator needs to restore by hand.

# %%
#| export
def _quarantine(path: Path) -> Path:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, aside)
    fsync_dir(path.parent)
    return aside


def _parse(path: Path) -> RuntimeState:
    "The state in `path`, or StateError describing why it cannot be used."
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"{path}: not valid JSON ({exc})") from None
    try:
        return RuntimeState.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise StateError(f"{path}: {loc}: {err['msg']}") from None


def restore_live_as_close_only(state: RuntimeState) -> list[str]:
    "Put every live asset in close-only (restart rule); return the assets changed."
    changed = [a for a, s in state.assets.items() if s.live_enabled and not s.close_only]
    for asset in changed:
        state.assets[asset].close_only = True
    return changed


# %%
#| export
def load_state(path: str | Path | None = None,  # default state_path()
               on_corrupt: Literal["raise", "default"] = "raise",  # after quarantining a bad file
               ) -> RuntimeState:
    "Load runtime.json: missing -> default; corrupt -> quarantined, then raise or default; live -> close-only."
    path = Path(path or state_path())
    if not path.exists():
        return RuntimeState.default()
    try:
        state = _parse(path)
    except StateError as exc:
        aside = _quarantine(path)
        log_event("runtime_state_quarantined", path=str(path), moved_to=str(aside), error=str(exc))
        if on_corrupt == "raise":
            raise StateError(f"{exc}; the file was moved to {aside.name}; the next load starts every asset in paper") from None
        return RuntimeState.default()
    if changed := restore_live_as_close_only(state):  # no configuration boots an asset able to open live positions
        log_event("live_restored_close_only", assets=changed)
    return state


# %% [markdown]
# Round trip, and a first boot:

# %%
with tempfile.TemporaryDirectory() as d:
    p = Path(d) / "runtime.json"
    test_eq(load_state(p), RuntimeState.default())
    s = RuntimeState.default()
    s.assets["forex"].consecutive_losses = 2
    s.last_recap = dt.datetime(2024, 5, 1, 13, tzinfo=dt.timezone.utc)
    s.sessions = {"forex": {"asset": "forex", "equity": 950.0, "epoch": 1}}
    save_state(s, p)
    test_eq(load_state(p), s)

# %% [markdown]
# A corrupt file is kept aside and reported; the next load is a paper boot:

# %%
with tempfile.TemporaryDirectory() as d:
    p = Path(d) / "runtime.json"
    p.write_text('{"schema_version": 1, "assets": {"forex": {"live_enabled": tr')
    test_fail(lambda: load_state(p), contains="runtime.json: not valid JSON")
    (aside,) = Path(d).glob("runtime.json.corrupt-*")
    test_eq(aside.read_text().endswith("tr"), True)  # the bad bytes are kept
    test_eq(load_state(p), RuntimeState.default())

    p.write_text(json.dumps({"schema_version": 1, "assets": {"forex": {"live_enabled": "maybe"}}}))
    test_fail(lambda: load_state(p), contains="assets.forex.live_enabled: Input should be a valid boolean")
    p.write_text(json.dumps({"schema_version": 99}))
    test_eq(load_state(p, on_corrupt="default"), RuntimeState.default())
    test_eq(len(list(Path(d).glob("runtime.json.corrupt-*"))), 3)
    test_eq(p.exists(), False)

# %% [markdown]
# An asset that was live comes back close-only (still live, so its positions and protective orders stay
# managed) — always; there is no setting that boots it able to open:

# %%
with tempfile.TemporaryDirectory() as d:
    p = Path(d) / "runtime.json"
    s = RuntimeState.default()
    s.assets["crypto_spot"].live_enabled = True
    save_state(s, p)
    got = load_state(p)
    test_eq((got.assets["crypto_spot"].live_enabled, got.assets["crypto_spot"].close_only), (True, True))
    test_eq(got.assets["forex"].close_only, False)
