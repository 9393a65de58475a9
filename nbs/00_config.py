# %% [markdown]
# # Configuration
#
# > Typed, validated JSON configuration with environment overrides, secrets from the environment only, a training-first boot guard and a config hash.

# %%
#| default_exp config

# %% [markdown]
# Three files in `config/` describe a deployment:
#
# - `config.json` — safety switches, paper bankroll, validation gates, risk tiers and caps, exposure
#   clusters, Telegram flags, dashboard address and the other global sections;
# - `assets.json` — one block per asset class: `crypto_spot`, `crypto_futures`, `forex`, `options`;
# - `strategies.json` — the strategies by id, their parameters and indicator specs.
#
# Each file is checked against a pydantic model: unknown keys, wrong types and out-of-range values are
# refused with **one line** naming the file, the key and the rule. Values can be overridden from the
# environment as `TRADINGBOT__SECTION__KEY=value`. Credentials are never in these files: they come from
# the environment (`BYBIT_API_KEY`, `TELEGRAM_BOT_TOKEN`, …) and never enter the effective config,
# its hash, a log or a report.

# %%
#| export
from __future__ import annotations

import copy
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from tradingbot.jsonlog import log_event
from tradingbot.paths import workspace_path

# %%
#| hide
import shutil

from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## Errors a user can read
# A `ConfigError` is what every bad file, key or value raises. Its text is a single line,
# `file: key: rule`, which is what `runners/live.py` prints before exiting non-zero.

# %%
#| export
class ConfigError(ValueError):
    "A configuration problem, described in one line: `file: key: rule`."

    def __init__(self, file: str, key: str, rule: str):
        self.file, self.key, self.rule = file, key, rule
        super().__init__(f"{file}: {key}: {rule}" if key else f"{file}: {rule}")


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _rule(err: dict) -> str:
    "A pydantic error as a short rule, with the offending value."
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    got = err.get("input")
    shown = json.dumps(got) if isinstance(got, (int, float, str, bool)) or got is None else type(got).__name__
    return f"{err['msg'][0].lower()}{err['msg'][1:]} (got {shown})"


def config_error(file: str, exc: ValidationError) -> ConfigError:
    "The first pydantic error as a ConfigError, with a count of the others."
    errs = exc.errors()
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return ConfigError(file, _loc(errs[0]["loc"]), _rule(errs[0]) + more)


# %% [markdown]
# ## The models
# Every section forbids unknown keys: a misspelt key is an error, not a silently ignored setting.

# %%
#| export
ASSETS = ("crypto_spot", "crypto_futures", "forex", "options")
Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
Pct = float  # percentages are written as percent: 15 means 15 %


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Safety(Strict):
    "The switches that keep real money safe (seed 003, Mode & Safety Logic)."
    START_MODE: Literal["training", "live"] = "training"
    LIVE_TRADING_ENABLED: bool = False  # master permission; each asset still boots in paper
    REQUIRE_MANUAL_LIVE_CONFIRMATION: bool = True
    ORDER_ROUTING: Literal["simulation", "broker"] = "simulation"
    MAX_STOP_LOSS_PCT: Pct = Field(15.0, gt=0, le=15)
    KILL_SWITCH_ENABLED: bool = True
    CONSECUTIVE_LOSS_KILL: int = Field(3, ge=1, le=100)
    RESTORE_LIVE_AS_CLOSE_ONLY: bool = True  # an asset live before a restart comes back close-only
    CONFIRMATION_TOKEN_TTL_S: int = Field(120, ge=10, le=3600)


class Paper(Strict):
    "The paper bankroll: each asset's session starts at PAPER_EQUITY_START, topped up at the threshold."
    PAPER_EQUITY_START: float = Field(1000.0, gt=0)
    PAPER_RESET_THRESHOLD: float = Field(10.0, ge=0)
    PAPER_TOPUP_AMOUNT: float = Field(1000.0, gt=0)

    @model_validator(mode="after")
    def _threshold_below_start(self):
        if self.PAPER_RESET_THRESHOLD >= self.PAPER_EQUITY_START:
            raise ValueError("PAPER_RESET_THRESHOLD must be below PAPER_EQUITY_START")
        return self


class Gates(Strict):
    "Promotion gates a strategy must pass before any asset trades it live."
    min_trades: int = Field(500, ge=1)
    min_sharpe: float = 2.0
    max_drawdown_pct: Pct = Field(15.0, gt=0, le=100)
    min_profit_factor: float = Field(1.5, ge=0)
    max_cvar_pct: Pct = Field(5.0, gt=0, le=100)  # historical CVaR of per-period returns, as a loss
    cvar_alpha: float = Field(0.95, gt=0.5, lt=1)
    min_deflated_sharpe: float = Field(0.95, ge=0, le=1)  # probability the Sharpe beats the trials' best luck
    online_min_trades: int = Field(100, ge=1)  # closed paper trades on the live/replay feed


class Validation(Strict):
    "Gates plus the walk-forward layout used to check them."
    gates: Gates = Gates()
    walk_forward_splits: int = Field(5, ge=2)
    embargo_pct: float = Field(0.01, ge=0, lt=0.5)
    seed: int = 42


# %% [markdown]
# Risk follows seed 002/003: below $1,000 a flat $10 notional; from $1,000 a tiered risk fraction
# between 0.5 % and 2 %, cut 0.25 points per 5 % drawdown down to a 0.25 % floor, times a signal weight.

# %%
#| export
class RiskTier(Strict):
    min_equity: float = Field(ge=0)
    risk_pct: Pct = Field(ge=0.5, le=2.0)


class SignalWeights(Strict):
    weak: float = 0.5
    normal: float = 1.0
    strong: float = 1.5
    weak_below: float = Field(0.33, ge=0, le=1)  # score < weak_below -> weak
    strong_above: float = Field(0.66, ge=0, le=1)  # score > strong_above -> strong


class Risk(Strict):
    small_account_equity: float = Field(1000.0, gt=0)
    small_account_notional: float = Field(10.0, gt=0)
    tiers: list[RiskTier] = [RiskTier(min_equity=1000, risk_pct=2.0), RiskTier(min_equity=10_000, risk_pct=1.5),
                             RiskTier(min_equity=50_000, risk_pct=1.0), RiskTier(min_equity=250_000, risk_pct=0.5)]
    drawdown_step_pct: Pct = Field(5.0, gt=0)
    drawdown_cut_pct: Pct = Field(0.25, ge=0)
    min_risk_pct: Pct = Field(0.25, gt=0)
    signal_weights: SignalWeights = SignalWeights()
    max_risk_per_trade_pct: Pct = Field(2.0, gt=0, le=10)
    max_daily_loss_pct: Pct = Field(5.0, gt=0, le=100)
    max_position_pct: Pct = Field(25.0, gt=0, le=100)  # of the asset's allocation, per position

    @model_validator(mode="after")
    def _tiers_ascending(self):
        mins = [t.min_equity for t in self.tiers]
        if not mins or mins != sorted(mins) or len(set(mins)) != len(mins):
            raise ValueError("tiers must be non-empty with strictly increasing min_equity")
        return self


class Cluster(Strict):
    symbols: list[str] = Field(min_length=1)
    max_concurrent: int = Field(2, ge=1)
    max_alloc_pct: Pct = Field(30.0, gt=0, le=100)


class Exposure(Strict):
    clusters: dict[str, Cluster] = {
        "btc_l1": Cluster(symbols=["BTCUSDT", "ETHUSDT", "SOLUSDT", "AVAXUSDT", "ADAUSDT"]),
        "usd_majors": Cluster(symbols=["EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD"]),
    }
    max_total_exposure_pct: Pct = Field(100.0, gt=0, le=1000)
    max_correlation: float = Field(0.8, gt=0, le=1)
    correlation_window: int = Field(100, ge=10)


# %%
#| export
class Telegram(Strict):
    "Which events reach Telegram; the token and chat ids come from the environment."
    ENABLED: bool = False
    SEND_TRADE_INTENTS_IN_TRAINING: bool = True
    SEND_EXECUTIONS_IN_LIVE: bool = True
    SEND_ERRORS: bool = True
    SEND_HOURLY_PAPER_RECAP: bool = True
    SEND_VALIDATION_RESULTS: bool = True
    SEND_MODE_CHANGES: bool = True


class Dashboard(Strict):
    host: str = "127.0.0.1"  # loopback unless an operator decides otherwise
    port: int = Field(8000, ge=1, le=65535)
    allowed_origins: list[str] = ["http://127.0.0.1:8000", "http://localhost:8000"]


class Reward(Strict):
    dd_penalty: float = Field(0.5, ge=0)
    tp_bonus: float = Field(0.1, ge=0)
    fee_model: Literal["after_fees"] = "after_fees"


class Universe(Strict):
    refresh_minutes: int = Field(15, ge=1)
    symbol_count: int = Field(20, ge=1, le=200)
    min_volume_usd: float = Field(1_000_000.0, ge=0)
    excluded: list[str] = []


class Errors(Strict):
    circuit_breaker_window_s: int = Field(60, ge=1)
    circuit_breaker_threshold: int = Field(5, ge=1)


class Data(Strict):
    bar_validation: Literal["raise", "drop", "flag"] = "raise"
    default_timeframe: Timeframe = "1h"


class AppConfig(Strict):
    "config.json"
    SAFETY: Safety = Safety()
    PAPER: Paper = Paper()
    VALIDATION: Validation = Validation()
    RISK: Risk = Risk()
    EXPOSURE: Exposure = Exposure()
    TELEGRAM: Telegram = Telegram()
    DASHBOARD: Dashboard = Dashboard()
    REWARD: Reward = Reward()
    UNIVERSE: Universe = Universe()
    ERRORS: Errors = Errors()
    DATA: Data = Data()


# %% [markdown]
# Each asset class has its own block; they share the base fields and add what their venue needs.

# %%
#| export
class Fees(Strict):
    maker_pct: Pct = Field(ge=-1, le=5)
    taker_pct: Pct = Field(ge=0, le=5)


class AssetBase(Strict):
    enabled: bool = True
    venue: Literal["bybit", "ibkr"]
    symbols: list[str] = Field(min_length=1)
    timeframe: Timeframe = "1h"
    strategies: list[str] = []
    live_enabled: bool = False  # requested by the file; the boot guard starts every asset in paper anyway
    close_only: bool = False
    allocation_usd: float = Field(1000.0, ge=0)
    sl_pct_min: Pct = Field(0.5, gt=0, le=15)
    sl_pct_max: Pct = Field(10.0, gt=0, le=15)
    fees: Fees
    min_notional: float = Field(5.0, ge=0)
    qty_step: float = Field(1.0, gt=0)  # the venue's lot step: order quantities are rounded down to a multiple
    replay_sample: str | None = None  # bundled sample replayed by the paper runner

    @model_validator(mode="after")
    def _sl_range(self):
        if self.sl_pct_min > self.sl_pct_max:
            raise ValueError("sl_pct_min must not exceed sl_pct_max")
        return self


class CryptoSpot(AssetBase):
    venue: Literal["bybit"] = "bybit"
    qty_step: float = Field(1e-6, gt=0)
    testnet: bool = True


class CryptoFutures(AssetBase):
    venue: Literal["bybit"] = "bybit"
    qty_step: float = Field(1e-3, gt=0)
    testnet: bool = True
    max_leverage: float = Field(3.0, ge=1, le=100)
    margin_mode: Literal["isolated", "cross"] = "isolated"
    funding_interval_h: int = Field(8, ge=1)


class Forex(AssetBase):
    venue: Literal["ibkr"] = "ibkr"
    max_leverage: float = Field(10.0, ge=1, le=50)


class Options(AssetBase):
    venue: Literal["ibkr"] = "ibkr"
    min_dte: int = Field(7, ge=0)
    max_dte: int = Field(60, ge=1)
    max_contracts: int = Field(5, ge=1)


class AssetsConfig(Strict):
    "assets.json"
    crypto_spot: CryptoSpot
    crypto_futures: CryptoFutures
    forex: Forex
    options: Options


# %%
#| export
class StrategyConfig(Strict):
    "One strategy in strategies.json."
    kind: Literal["rule", "ml", "rl"] = "rule"
    description: str = ""
    assets: list[Literal["crypto_spot", "crypto_futures", "forex", "options"]] = []
    params: dict[str, float | int | str | bool] = {}
    indicators: list[dict[str, Any]] = []  # indicator spec entries: {"name": "rsi", "period": 2, ...}
    gates: Gates | None = None  # per-strategy gate overrides

    @model_validator(mode="after")
    def _indicator_names(self):
        for i, entry in enumerate(self.indicators):
            if not isinstance(entry.get("name"), str):
                raise ValueError(f"indicators[{i}] needs a string 'name'")
        return self


class StrategiesConfig(Strict):
    "strategies.json"
    strategies: dict[str, StrategyConfig] = Field(min_length=1)


MODELS = {"config": AppConfig, "assets": AssetsConfig, "strategies": StrategiesConfig}

# %% [markdown]
# ## Secrets come from the environment, never from files
# A file that carries a credential is refused outright (the operator learns where it belongs), and
# `Secrets` masks its values in any `repr`.

# %%
#| export
SECRET_KEYS = {"BOT_TOKEN": "TELEGRAM_BOT_TOKEN", "CHAT_ID": "TELEGRAM_CHAT_IDS", "CHAT_IDS": "TELEGRAM_CHAT_IDS",
               "API_KEY": "BYBIT_API_KEY", "API_SECRET": "BYBIT_API_SECRET", "TOKEN": "TELEGRAM_BOT_TOKEN",
               "SECRET": "BYBIT_API_SECRET", "PASSWORD": "the broker's own login"}


def _refuse_secrets(raw: Any, file: str, path: str = "") -> None:
    "Raise if any key of `raw` names a credential."
    if isinstance(raw, dict):
        for key, value in raw.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).upper() in SECRET_KEYS:
                raise ConfigError(file, where, f"secrets are read from the environment "
                                  f"({SECRET_KEYS[str(key).upper()]}), never from config files: remove the key")
            _refuse_secrets(value, file, where)
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            _refuse_secrets(value, file, f"{path}[{i}]")


class Secrets(BaseModel):
    "Credentials and broker endpoints, read from the environment only."
    bybit_api_key: SecretStr | None = None
    bybit_api_secret: SecretStr | None = None
    ib_host: str = "127.0.0.1"
    ib_port: int = 7497
    ib_client_id: int = 1
    telegram_bot_token: SecretStr | None = None
    telegram_chat_ids: list[int] = []


def load_secrets(env: dict | None = None) -> Secrets:
    "Secrets from the environment (`BYBIT_API_KEY`, `IB_PORT`, `TELEGRAM_CHAT_IDS`=comma list, …)."
    env = os.environ if env is None else env
    fields = {name: env[name.upper()] for name in Secrets.model_fields if env.get(name.upper())}
    if "telegram_chat_ids" in fields:
        fields["telegram_chat_ids"] = [c.strip() for c in fields["telegram_chat_ids"].split(",") if c.strip()]
    try:
        return Secrets(**fields)
    except ValidationError as exc:
        raise config_error("environment", exc) from None


# %%
s = load_secrets({"BYBIT_API_KEY": "k-123456", "IB_PORT": "4002", "TELEGRAM_CHAT_IDS": "11, 22"})
test_eq((s.ib_port, s.telegram_chat_ids), (4002, [11, 22]))
assert "k-123456" not in repr(s) and s.bybit_api_key.get_secret_value() == "k-123456"
test_fail(lambda: _refuse_secrets({"TELEGRAM": {"BOT_TOKEN": "x"}}, "config.json"),
          contains="config.json: TELEGRAM.BOT_TOKEN: secrets are read from the environment (TELEGRAM_BOT_TOKEN)")


# %% [markdown]
# ## Reading a file
# Malformed JSON is reported with its line and column; a valid document is checked by its model.

# %%
#| export
def _read_json(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(path.name, "", f"file not found in {path.parent}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(path.name, f"line {exc.lineno} column {exc.colno}", f"malformed JSON ({exc.msg})") from None


def validate_schema(cfg: dict,  # the configuration document
                    schema: str | type[BaseModel] | dict,  # a section name, a model class or a JSON Schema
                    file: str | None = None,  # the file name to put in errors
                    ) -> dict:  # the validated document, defaults filled in
    "Validate `cfg` against a section's model (or a JSON Schema); raise a one-line ConfigError."
    if isinstance(schema, dict):
        return _validate_json_schema(cfg, schema, file or "config")
    model = MODELS[schema] if isinstance(schema, str) else schema
    file = file or next((f"{k}.json" for k, m in MODELS.items() if m is model), model.__name__)
    _refuse_secrets(cfg, file)
    try:
        return model.model_validate(cfg).model_dump(mode="json")
    except ValidationError as exc:
        raise config_error(file, exc) from None


def _validate_json_schema(cfg: dict, schema: dict, file: str) -> dict:
    import jsonschema
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(cfg))
    if err is not None:
        raise ConfigError(file, _loc(tuple(err.absolute_path)), err.message)
    return cfg


# %%
test_fail(lambda: validate_schema({"SAFETY": {"MAX_STOP_LOSS_PCT": 20}}, "config"),
          contains="config.json: SAFETY.MAX_STOP_LOSS_PCT: input should be less than or equal to 15 (got 20)")
test_fail(lambda: validate_schema({"SAFETY": {"MAX_STOPLOSS_PCT": 5}}, "config"),
          contains="config.json: SAFETY.MAX_STOPLOSS_PCT: unknown key")
test_fail(lambda: validate_schema({"SAFETY": {"KILL_SWITCH_ENABLED": "maybe"}}, "config"),
          contains="config.json: SAFETY.KILL_SWITCH_ENABLED: input should be a valid boolean")
test_eq(validate_schema({}, "config")["SAFETY"]["MAX_STOP_LOSS_PCT"], 15.0)
_assets = json.loads(Path("../config/assets.json").read_text())
_assets["forex"]["qty_step"] = 0
test_fail(lambda: validate_schema(_assets, "assets"), contains="assets.json: forex.qty_step: input should be greater than 0")
del _assets["forex"]["qty_step"], _assets["crypto_futures"]["qty_step"]  # an older file: the venue's usual step
test_eq([validate_schema(_assets, "assets")[a]["qty_step"] for a in ("forex", "crypto_futures")], [1.0, 1e-3])

# %% [markdown]
# ## Environment overrides
# `TRADINGBOT__SAFETY__CONSECUTIVE_LOSS_KILL=5` overrides a key of `config.json`;
# `TRADINGBOT__ASSETS__FOREX__ENABLED=false` one of `assets.json`. Values are parsed as JSON when they
# can be (numbers, booleans, lists) and otherwise taken as strings; the model then types and checks
# them like file values. Names are matched case-insensitively against existing keys only.

# %%
#| export
ENV_PREFIX = "TRADINGBOT__"


def _match_key(node: dict, part: str, var: str) -> str:
    for key in node:
        if key.lower() == part.lower():
            return key
    raise ConfigError("environment", var, f"unknown key {part!r} (allowed: {', '.join(sorted(node))})")


def apply_env_overrides(docs: dict, env: dict | None = None) -> list[str]:
    "Apply `TRADINGBOT__…` variables to the section documents in place; return the variables used."
    env = os.environ if env is None else env
    used = []
    for var in sorted(k for k in env if k.startswith(ENV_PREFIX)):
        parts = var[len(ENV_PREFIX):].split("__")
        section = parts[0].lower() if parts[0].lower() in MODELS else "config"
        parts = parts[1:] if parts[0].lower() in MODELS else parts
        node = docs[section]
        for part in parts[:-1]:
            node = node[_match_key(node, part, var)]
            if not isinstance(node, dict):
                raise ConfigError("environment", var, "does not name a key inside a section")
        node[_match_key(node, parts[-1], var)] = _parse_env_value(env[var])
        used.append(var)
    return used


def _parse_env_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# %% [markdown]
# ## Training first, and the config pin
# Whatever the files say, every asset boots in paper: `live_enabled` is cleared, routing is
# simulation and the start mode is training. `LIVE_TRADING_ENABLED` stays what the operator wrote:
# it is the master permission the runtime checks before an asset may be switched live (after its
# strategy passed validation and two confirmations). The config hash pins exactly what ran.

# %%
#| export
def apply_training_first(docs: dict) -> list[str]:
    "Force every asset into paper at boot (in place); return what was overridden."
    notes = []
    safety = docs["config"]["SAFETY"]
    for key, value in (("START_MODE", "training"), ("ORDER_ROUTING", "simulation")):
        if safety[key] != value:
            notes.append(f"SAFETY.{key}={safety[key]!r} -> {value!r}")
            safety[key] = value
    for asset in ASSETS:
        if docs["assets"][asset]["live_enabled"]:
            notes.append(f"{asset}.live_enabled=true -> false")
            docs["assets"][asset]["live_enabled"] = False
    return notes


def config_hash(docs: dict) -> str:
    "sha256 of the effective configuration (canonical JSON; secrets are never part of it)."
    canonical = json.dumps(docs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def asset_modes(docs: dict) -> dict[str, str]:
    "The trading mode of each enabled asset: 'live' or 'paper'."
    return {a: "live" if c["live_enabled"] else "paper" for a, c in docs["assets"].items() if c["enabled"]}


# %% [markdown]
# ## Loading, reading, changing and saving
# `load_config` reads the three files from a directory (default `config/`, or `$TRADINGBOT_CONFIG_DIR`),
# validates them, applies overrides and the boot guard, checks cross-references (an asset may only
# name strategies that exist), logs `config_loaded` with the hash, and keeps the result as the
# current configuration for `get_key` / `set_key`.

# %%
#| export
_current: dict | None = None
_current_dir: Path | None = None


def read_config_dir(config_dir: str | Path | None = None, env: dict | None = None) -> tuple[dict, list[str], list[str]]:
    "Validated documents of a config directory, with env overrides and the boot guard: (docs, overrides, notes)."
    config_dir = Path(config_dir or workspace_path("config"))
    docs = {s: validate_schema(_read_json(config_dir / f"{s}.json"), s) for s in MODELS}
    overrides = apply_env_overrides(docs, env)
    docs = {s: validate_schema(d, s, file=f"{s}.json (after environment overrides)" if overrides else None)
            for s, d in docs.items()}
    _check_references(docs)
    return docs, overrides, apply_training_first(docs)


def _check_references(docs: dict) -> None:
    known = docs["strategies"]["strategies"]
    for asset, cfg in docs["assets"].items():
        for i, sid in enumerate(cfg["strategies"]):
            if sid not in known:
                raise ConfigError("assets.json", f"{asset}.strategies[{i}]",
                                  f"unknown strategy {sid!r} (defined in strategies.json: {', '.join(known)})")


def load_config(section: str | None = None,  # None (all), 'config', 'assets', 'strategies' or a config.json section
                config_dir: str | Path | None = None,  # default $TRADINGBOT_CONFIG_DIR or <repo>/config
                ) -> dict:
    "Load, validate and guard the configuration; return it (or one section) as plain data."
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


# %%
#| export
_MISSING = object()


def _split_path(path: str) -> tuple[str, list[str]]:
    "'SAFETY.MAX_STOP_LOSS_PCT' -> ('config', [...]); 'assets.forex.enabled' -> ('assets', ['forex', 'enabled'])."
    parts = path.split(".")
    return (parts[0].lower(), parts[1:]) if parts[0].lower() in MODELS else ("config", parts)


def get_key(path: str, default: Any = None) -> Any:
    "Value at a dotted path of the current configuration (loaded on first use), or `default`."
    docs = _current if _current is not None else (load_config() and _current)
    section, parts = _split_path(path)
    node: Any = docs[section]
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return copy.deepcopy(node)


def set_key(path: str, value: Any) -> None:
    "Change one value of the current configuration in memory, re-validated (persist with `save_config`)."
    docs = _current if _current is not None else (load_config() and _current)
    section, parts = _split_path(path)
    candidate = copy.deepcopy(docs[section])
    node = candidate
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ConfigError(f"{section}.json", path, "no such section")
    node[parts[-1]] = value
    docs[section] = validate_schema(candidate, section)


def save_config(section: str, cfg: dict, config_dir: str | Path | None = None) -> Path:
    "Validate `cfg` as `section` ('config', 'assets', 'strategies') and write it atomically."
    if section not in MODELS:
        raise ConfigError(f"{section}.json", "", f"unknown config file; expected one of {', '.join(MODELS)}")
    doc = validate_schema(cfg, section)
    target = Path(config_dir or _current_dir or workspace_path("config")) / f"{section}.json"
    atomic_write_text(target, json.dumps(doc, indent=2) + "\n")
    return target


def fsync_dir(directory: Path) -> None:
    "Persist a directory's entries (a rename inside it) to disk."
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write, binary: bool = False) -> None:
    "Call `write(file)` on a temp file beside `path`, fsync, then replace `path`: readers see old or new, never torn."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    "Write `text` to `path` atomically (see `atomic_write`)."
    atomic_write(path, lambda fh: fh.write(text))


# %% [markdown]
# The repository's `config/` loads; overrides from the environment are typed by the model; a file
# that asks for live still boots in paper; the hash changes with any value.

# %%
cfg = load_config()
test_eq(set(cfg), {"config", "assets", "strategies"})
test_eq(get_key("SAFETY.MAX_STOP_LOSS_PCT"), 15.0)
test_eq(asset_modes(cfg), {a: "paper" for a in asset_modes(cfg)})

os.environ["TRADINGBOT__SAFETY__CONSECUTIVE_LOSS_KILL"] = "5"
os.environ["TRADINGBOT__ASSETS__FOREX__ENABLED"] = "false"
cfg2 = load_config()
del os.environ["TRADINGBOT__SAFETY__CONSECUTIVE_LOSS_KILL"], os.environ["TRADINGBOT__ASSETS__FOREX__ENABLED"]
test_eq((cfg2["config"]["SAFETY"]["CONSECUTIVE_LOSS_KILL"], cfg2["assets"]["forex"]["enabled"]), (5, False))
assert config_hash(cfg2) != config_hash(cfg)

os.environ["TRADINGBOT__SAFETY__MAX_STOP_LOSS_PCT"] = "25"
test_fail(load_config, contains="SAFETY.MAX_STOP_LOSS_PCT: input should be less than or equal to 15 (got 25)")
del os.environ["TRADINGBOT__SAFETY__MAX_STOP_LOSS_PCT"]

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
    test_eq(get_key("SAFETY.NOPE", "dflt"), "dflt")
    test_eq([p.name for p in Path(d).iterdir() if p.name.startswith(".")], [])  # no temp files left
load_config();


# %% [markdown]
# ## JSON Schema
# Editors and other tools validate the files with the JSON Schemas exported from the models; they live in
# `config/schema/` and a test keeps them identical to the models.

# %%
#| export
def json_schemas() -> dict[str, dict]:
    "JSON Schema of each config file, from its model."
    return {section: model.model_json_schema() for section, model in MODELS.items()}


def export_json_schemas(directory: str | Path | None = None) -> list[Path]:
    "Write `<section>.schema.json` for each config file into `directory` (default config/schema)."
    directory = Path(directory or workspace_path("config") / "schema")
    paths = []
    for section, schema in json_schemas().items():
        paths.append(directory / f"{section}.schema.json")
        atomic_write_text(paths[-1], json.dumps(schema, indent=2, sort_keys=True) + "\n")
    return paths


# %%
for section, schema in json_schemas().items():
    committed = json.loads(Path(f"../config/schema/{section}.schema.json").read_text())
    test_eq(committed, schema)  # run export_json_schemas() after changing a model
    validate_schema(json.loads(Path(f"../config/{section}.json").read_text()), schema, f"{section}.json")
test_fail(lambda: validate_schema({"SAFETY": {"MAX_STOP_LOSS_PCT": 30}}, json_schemas()["config"], "config.json"),
          contains="config.json: SAFETY.MAX_STOP_LOSS_PCT:")
