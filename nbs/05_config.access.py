# %% [markdown]
# # Reading and changing the configuration
#
# > `load_config` keeps the current configuration; `get_key` / `set_key` read and change it by dotted path, checked against the models so a misspelt key is an error, not a silent default; `save_config` writes a file atomically.

# %%
#| default_exp config.access

# %% [markdown]
# `load_config` reads a directory (default `config/`, or `$TRADINGBOT_CONFIG_DIR`) with
# `config.loading.read_config_dir`, logs `config_loaded` with the hash, and keeps the result as the
# current configuration for `get_key` / `set_key`, which load it on first use.

# %%
#| export
from __future__ import annotations

import copy
import difflib
import functools
import json
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from tradingbot.config.loading import ConfigError, config_hash, read_config_dir, validate_schema
from tradingbot.config.models import MODELS, AssetsConfig
from tradingbot.fileio import atomic_write_text
from tradingbot.jsonlog import log_event
from tradingbot.paths import workspace_path

# %%
#| hide
import shutil
import tempfile

from fastcore.test import test_eq, test_fail

from tradingbot import jsonlog

jsonlog.configure(tempfile.mkdtemp())  # the examples' events stay out of the repository's logs/

# %% [markdown]
# ## Loading
# A section name is a file (`config`, `assets`, `strategies`) or a section of `config.json` (`RISK`,
# `SAFETY`, …, in any case).

# %%
#| export
_current: dict | None = None  # the documents load_config read last; get_key and set_key work on them
_current_dir: Path | None = None  # where they came from; save_config writes there by default


def load_config(section: str | None = None,  # None (all), 'config', 'assets', 'strategies' or a config.json section
                config_dir: str | Path | None = None,  # default $TRADINGBOT_CONFIG_DIR or <repo>/config
                ) -> dict:  # a copy: changing it changes nothing (use set_key)
    "Load, validate and guard the configuration; keep it as the current one and return it (or one section)."
    global _current, _current_dir
    docs, overrides, notes = read_config_dir(config_dir)
    _current, _current_dir = docs, Path(config_dir or workspace_path("config"))
    log_event("config_loaded", config_dir=str(_current_dir), config_hash=config_hash(docs),
              env_overrides=overrides, training_first=notes)
    return copy.deepcopy(_section(docs, section)) if section else copy.deepcopy(docs)


def _section(docs: dict, name: str) -> dict:
    if name.lower() in docs:
        return docs[name.lower()]
    if name.upper() in docs["config"]:
        return docs["config"][name.upper()]
    raise ConfigError("config", name, f"unknown section (files: {', '.join(MODELS)}; "
                      f"config.json sections: {', '.join(docs['config'])})")


def _docs() -> dict:
    "The current configuration, loaded on first use."
    return _current if _current is not None else (load_config() and _current)


# %%
cfg = load_config()
test_eq(set(cfg), {"config", "assets", "strategies"})
test_eq(load_config("risk"), cfg["config"]["RISK"])
test_fail(lambda: load_config("rsik"), contains="config: rsik: unknown section")

# %% [markdown]
# ## Keys are checked against the models
# A path is `SECTION.KEY…` for `config.json` (`SAFETY.MAX_STOP_LOSS_PCT`) or `assets.…` /
# `strategies.…` for the other files. The rule:
#
# - a path the models do not define is a `ConfigError` that names the path and the nearest valid keys
#   (`SAFETY.MAX_STOP_LOS_PCT` → did you mean `SAFETY.MAX_STOP_LOSS_PCT`?), and so is a path that goes
#   on below a value (`SAFETY.MAX_STOP_LOSS_PCT.x`);
# - ids are data, not schema: a strategy id (`strategies.strategies.<id>`), a cluster, a parameter, and an
#   asset id (`assets.<asset>`) may be absent, and then `get_key` returns its `default`;
# - below an asset, a field that *any* asset class defines is valid for every asset: `max_leverage` of
#   `crypto_futures` and `forex` is "not set" for `crypto_spot` (the default), not an error;
# - a defined path whose value is missing (an optional section left `null`, such as a strategy's
#   `gates`) also returns the default.

# %%
#| export
_BY_ID = (AssetsConfig,)  # models whose fields are ids, read like a dict of the union of their fields' types


def _members(tp: Any) -> list:
    "A type as its union members, None dropped: `Gates | None` -> [Gates]."
    if get_origin(tp) in (Union, types.UnionType):
        return [m for arg in get_args(tp) for m in _members(arg)]
    return [] if tp is type(None) else [tp]


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _child_types(tp: Any, part: str) -> list | None:
    "Types the key `part` under a value of type `tp` can hold; None when `tp` defines no such key."
    if tp is Any:
        return [Any]
    if get_origin(tp) is dict:
        return _members(get_args(tp)[1])
    if _is_model(tp) and tp in _BY_ID:
        return [m for f in tp.model_fields.values() for m in _members(f.annotation)]
    if _is_model(tp) and part in tp.model_fields:
        return _members(tp.model_fields[part].annotation)
    return None


def _split_path(path: str) -> tuple[str, list[str], int]:
    "'SAFETY.X' -> ('config', ['SAFETY', 'X'], 0); 'assets.forex.enabled' -> ('assets', ['forex', 'enabled'], 1)."
    parts = path.split(".")
    if parts[0].lower() in MODELS:
        return parts[0].lower(), parts[1:], 1
    return "config", parts, 0


@functools.lru_cache(maxsize=4096)  # the models never change at run time; the engine asks the same paths per bar
def check_key(path: str,  # a dotted path: 'SAFETY.MAX_STOP_LOSS_PCT', 'assets.forex.fees.taker_pct', …
              ) -> tuple[str, tuple[str, ...]]:  # (file section, the keys below it)
    "Raise a ConfigError naming the nearest valid keys unless the config models define `path`."
    section, parts, skip = _split_path(path)
    kinds = [MODELS[section]]
    for i, part in enumerate(parts):
        below = [_child_types(tp, part) for tp in kinds]
        if all(b is None for b in below):
            where = ".".join(path.split(".")[:skip + i])
            raise ConfigError(f"{section}.json", path, _no_such_key(kinds, part, where))
        kinds = [tp for b in below if b is not None for tp in b]
    return section, tuple(parts)


def _no_such_key(kinds: list, part: str, where: str) -> str:
    "Why `part` is not a key under `where`, with the nearest valid keys."
    keys = sorted({k for tp in kinds if _is_model(tp) for k in tp.model_fields})
    if not keys:
        return f"{where} is a value, not a section: it has no key {part!r}"
    by_lower = {k.lower(): k for k in keys}
    near = [by_lower[k] for k in difflib.get_close_matches(part.lower(), by_lower, n=3, cutoff=0.6)]
    prefix = f"{where}." if where else ""
    if near:
        others = f" (other near keys: {', '.join(near[1:])})" if near[1:] else ""
        return f"no such key; did you mean {prefix}{near[0]}?{others}"
    return f"no such key under {where or 'the file'} (keys: {', '.join(keys)})"


# %%
test_eq(check_key("SAFETY.MAX_STOP_LOSS_PCT"), ("config", ("SAFETY", "MAX_STOP_LOSS_PCT")))
test_eq(check_key("assets.crypto_spot.max_leverage"), ("assets", ("crypto_spot", "max_leverage")))
test_eq(check_key("strategies.strategies.any_id.params.n")[0], "strategies")
test_fail(lambda: check_key("SAFETY.MAX_STOP_LOS_PCT"),
          contains="config.json: SAFETY.MAX_STOP_LOS_PCT: no such key; did you mean SAFETY.MAX_STOP_LOSS_PCT?")
test_fail(lambda: check_key("risk.tiers"), contains="config.json: risk.tiers: no such key; did you mean RISK?")
test_fail(lambda: check_key("RISK.nope"), contains="no such key under RISK (keys: drawdown_cut_pct, ")
test_fail(lambda: check_key("assets.forex.max_leverge"), contains="did you mean assets.forex.max_leverage?")
test_fail(lambda: check_key("assets.nope.enabeld"), contains="did you mean assets.nope.enabled? (other near keys: live_enabled)")
test_fail(lambda: check_key("strategies.strategies.rsi2.gates.min_trade"),
          contains="strategies.json: strategies.strategies.rsi2.gates.min_trade: no such key; did you mean "
                   "strategies.strategies.rsi2.gates.min_trades? (other near keys: online_min_trades, min_sharpe)")
test_fail(lambda: check_key("SAFETY.MAX_STOP_LOSS_PCT.x"), contains="SAFETY.MAX_STOP_LOSS_PCT is a value, not a section")
test_fail(lambda: check_key("RISK.tiers.0"), contains="RISK.tiers is a value, not a section")

# %% [markdown]
# ## Reading and changing keys
# `get_key` returns a copy of the value (changing it changes nothing); `set_key` re-validates the whole
# file the key belongs to, so a refused change leaves the configuration as it was. Neither writes a
# file: `save_config` does, atomically (readers see the old file or the new one).

# %%
#| export
_MISSING = object()


def get_key(path: str,  # a dotted path the models define (see `check_key`)
            default: Any = None,  # returned when an id along the path, or an optional value, is absent
            ) -> Any:
    "Value at a dotted path of the current configuration (loaded on first use), or `default`."
    section, parts = check_key(path)
    node: Any = _docs()[section]
    for part in parts:
        node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING or node is None:
            return default
    return copy.deepcopy(node)


def set_key(path: str,  # a dotted path the models define (see `check_key`)
            value: Any,  # the new value; the file it belongs to is re-validated with it
            ) -> None:
    "Change one value of the current configuration in memory, re-validated (persist with `save_config`)."
    section, parts = check_key(path)
    docs = _docs()
    candidate = copy.deepcopy(docs[section])
    node = candidate
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ConfigError(f"{section}.json", path, "no such section")
    node[parts[-1]] = value
    docs[section] = validate_schema(candidate, section)


def save_config(section: str,  # the file: 'config', 'assets' or 'strategies'
                cfg: dict,  # its whole document
                config_dir: str | Path | None = None,  # default: the directory load_config read
                ) -> Path:  # the file written
    "Validate `cfg` as `section` and write it atomically."
    if section not in MODELS:
        raise ConfigError(f"{section}.json", "", f"unknown config file; expected one of {', '.join(MODELS)}")
    doc = validate_schema(cfg, section)
    target = Path(config_dir or _current_dir or workspace_path("config")) / f"{section}.json"
    atomic_write_text(target, json.dumps(doc, indent=2) + "\n")
    return target


# %%
load_config()
test_eq(get_key("SAFETY.MAX_STOP_LOSS_PCT"), 15.0)
test_eq(get_key("assets.crypto_futures.max_leverage"), 3.0)
test_eq(get_key("assets.crypto_spot.max_leverage", 1.0), 1.0)  # a field of other asset classes: not set here
test_eq(get_key("assets.stocks"), None)  # an unknown asset id is absent, not an error
test_eq(get_key("strategies.strategies.nope", {}), {})
test_eq(get_key("strategies.strategies.rsi2.gates", {}), {})  # an optional section left null
test_eq(get_key("assets.forex.fees.taker_pct") >= 0, True)
test_fail(lambda: get_key("SAFETY.MAX_STOP_LOS_PCT", 15.0), contains="did you mean SAFETY.MAX_STOP_LOSS_PCT?")
test_fail(lambda: get_key("RISK.nope"), contains="RISK.nope: no such key")
g = get_key("VALIDATION.gates")
g["min_trades"] = 1
test_eq(get_key("VALIDATION.gates.min_trades") > 1, True)  # get_key hands out copies

# %%
with tempfile.TemporaryDirectory() as d:
    for f in Path("../config").glob("*.json"):
        shutil.copy(f, d)
    assets = json.loads((Path(d) / "assets.json").read_text())
    assets["crypto_spot"]["live_enabled"] = True
    save_config("assets", assets, d)
    cfg = load_config(config_dir=d)
    test_eq(cfg["assets"]["crypto_spot"]["live_enabled"], False)  # training first
    set_key("SAFETY.CONSECUTIVE_LOSS_KILL", 7)
    test_eq(get_key("SAFETY.CONSECUTIVE_LOSS_KILL"), 7)
    test_fail(lambda: set_key("SAFETY.MAX_STOP_LOSS_PCT", 16), contains="less than or equal to 15")
    test_eq(get_key("SAFETY.MAX_STOP_LOSS_PCT"), 15.0)  # a refused change leaves the config as it was
    test_fail(lambda: set_key("SAFETY.CONSECUTIVE_LOSS_KIL", 7), contains="did you mean SAFETY.CONSECUTIVE_LOSS_KILL?")
    set_key("EXPOSURE.clusters.metals", {"symbols": ["XAUUSD"]})  # a new id is data: allowed, then validated
    test_eq(get_key("EXPOSURE.clusters.metals.max_concurrent"), 2)
    test_fail(lambda: set_key("assets.stocks.enabled", True), contains="assets.json: assets.stocks.enabled: no such section")
    path = save_config("config", get_key("config"))  # persist the changes, into the directory loaded
    test_eq(path, Path(d) / "config.json")
    load_config(config_dir=d)
    test_eq((get_key("SAFETY.CONSECUTIVE_LOSS_KILL"), get_key("EXPOSURE.clusters.metals.symbols")), (7, ["XAUUSD"]))
    test_fail(lambda: save_config("cfg", {}, d), contains="cfg.json: unknown config file")
    test_eq([p.name for p in Path(d).iterdir() if p.name.startswith(".")], [])  # no temp files left
load_config();
