"""Boot is paper, always (issue 18): every combination of the master switch, the configuration values that speak of
live trading and the flags `runtime.json` was left with boots with no asset able to open a live position. Opening
live takes a fresh confirmation (preview, then the token) after the boot — and then it can, unless a kill switch,
the master switch or a broker desync says no.

Each case boots the real engine on a config directory written for it, with a recording paper venue standing in for
the live one, runs bars with a strategy that wants to enter on every bar, and reads what the venue received.
"""
import dataclasses
import itertools
import json
import shutil

import pytest

from tradingbot.config import load_config
from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.synthetic import synthetic_bars
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.simulated import SimulatedClient
from tradingbot.runtime.engine import Engine, asset_setup
from tradingbot.runtime.state import AssetState, RuntimeState, save_state

from conftest import ROOT
from helpers import AlwaysLong

ASSET, SYMBOL = "crypto_spot", "BTCUSDT"
EVENTS = list(ReplayFeed({SYMBOL: synthetic_bars(80, "1h", seed=4, price=20_000.0)}, "1h").iter_bars())

CONFIG = {  # every value of config.json / assets.json that names live trading
    "LIVE_TRADING_ENABLED": (False, True),
    "START_MODE": ("training", "live"),
    "ORDER_ROUTING": ("simulation", "broker"),
    "REQUIRE_MANUAL_LIVE_CONFIRMATION": (True, False),
    "live_enabled": (False, True),  # assets.crypto_spot.live_enabled
}
RUNTIME = {  # what runtime.json says about the asset when the bot starts (None: no file)
    "no file": None,
    "paper": AssetState(),
    "live": AssetState(live_enabled=True),
    "live, close-only": AssetState(live_enabled=True, close_only=True),
    "live, killed": AssetState(live_enabled=True, kill=True),
    "live, global kill": AssetState(live_enabled=True),
    "live, broker desync": AssetState(live_enabled=True, broker_desync=True),
}
CASES = [dict(zip(CONFIG, values)) | {"runtime": r} for values in itertools.product(*CONFIG.values()) for r in RUNTIME]


class RecordingVenue(SimulatedClient):
    "The paper venue standing in for a live one; it keeps every order it was sent."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.received = []

    def submit(self, order):
        self.received.append(order)
        return super().submit(order)

    def openings(self) -> list:
        return [o for o in self.received if not o.reduce_only]


@pytest.fixture(autouse=True)
def default_config_after():
    yield
    load_config()  # the repository's configuration again for the next test


def _config_dir(tmp, case: dict):
    cfg = tmp / "config"
    shutil.copytree(ROOT / "config", cfg)
    config = json.loads((cfg / "config.json").read_text())
    for key in ("LIVE_TRADING_ENABLED", "START_MODE", "ORDER_ROUTING", "REQUIRE_MANUAL_LIVE_CONFIRMATION"):
        config["SAFETY"][key] = case[key]
    (cfg / "config.json").write_text(json.dumps(config))
    assets = json.loads((cfg / "assets.json").read_text())
    assets[ASSET]["live_enabled"] = case["live_enabled"]
    (cfg / "assets.json").write_text(json.dumps(assets))
    return cfg


def _runtime(state_dir, name: str) -> None:
    asset = RUNTIME[name]
    if asset is None:
        return
    state = RuntimeState.default()
    state.assets[ASSET] = asset
    state.global_kill = name == "live, global kill"
    save_state(state, state_dir / "runtime.json")


def _boot(tmp, case: dict):
    load_config(config_dir=_config_dir(tmp, case))
    state_dir = tmp / "state"
    state_dir.mkdir()
    _runtime(state_dir, case["runtime"])
    venues = []

    def venue():
        venues.append(RecordingVenue(ASSET, FillConfig.for_asset(ASSET), cash=1000.0))
        return venues[-1]

    setup = dataclasses.replace(asset_setup(ASSET, []), symbols=[SYMBOL], strategies=[AlwaysLong()])
    engine = Engine([setup], state_dir, tmp / "logs", live_clients={ASSET: venue})
    engine.controller.gate = lambda sid, asset: True  # validation passed (the gate is tested on its own)
    engine.start()
    return engine, venues


def _case_id(case: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in case.items())


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_no_configuration_boots_an_asset_able_to_open_live(tmp_path, case):
    engine, venues = _boot(tmp_path, case)
    ok, why = engine.controller.can_open(ASSET, "live")
    assert not ok, f"booted able to open live: {why}"
    for bar in EVENTS[:40]:
        engine.process(bar)
    assert all(v.openings() == [] for v in venues), "an opening order reached the live venue before a confirmation"
    assert engine.book(ASSET, "paper").portfolio.position(SYMBOL) is not None  # paper trades whatever live does
    was_live = case["runtime"].startswith("live")
    assert (engine.book(ASSET, "live") is not None) == was_live  # a live asset comes back close-only, not paper

    # a fresh confirmation through the preview flow: then the asset can open, unless a switch still says no
    ok, why = engine.controller.enable_live(ASSET, engine.controller.preview(ASSET)["token"])
    blocked = {"live, killed": "kill switch is on", "live, global kill": "global kill switch is on"}.get(case["runtime"])
    if not case["LIVE_TRADING_ENABLED"]:
        blocked = blocked or "SAFETY.LIVE_TRADING_ENABLED is false"
    assert ok == (blocked is None) and (blocked is None or blocked in why), why
    for bar in EVENTS[40:]:
        engine.process(bar)
    opened = sum(len(v.openings()) for v in venues)
    can = ok and case["runtime"] != "live, broker desync"
    assert (opened > 0) == can, (opened, why)
    engine.finish()


def test_a_token_is_needed_whatever_the_config_says(tmp_path):
    "REQUIRE_MANUAL_LIVE_CONFIRMATION=false does not remove the confirmation: no token, no live."
    case = {"LIVE_TRADING_ENABLED": True, "START_MODE": "live", "ORDER_ROUTING": "broker",
            "REQUIRE_MANUAL_LIVE_CONFIRMATION": False, "live_enabled": True, "runtime": "live"}
    engine, _ = _boot(tmp_path, case)
    ok, why = engine.controller.enable_live(ASSET, None)
    assert not ok and "no confirmation token" in why
    ok, why = engine.controller.enable_live(ASSET, "made-up-token")
    assert not ok and "unknown or already used confirmation token" in why
    assert not engine.controller.can_open(ASSET, "live")[0]
    engine.finish()
