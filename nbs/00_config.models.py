# %% [markdown]
# # Configuration models
#
# > The pydantic models of `config.json`, `assets.json` and `strategies.json`: every key, its type, its default and its range, and the JSON Schemas exported from them.

# %%
#| default_exp config.models

# %% [markdown]
# Three files in `config/` describe a deployment:
#
# - `config.json` — safety switches, paper bankroll, validation gates, risk tiers and caps, exposure
#   clusters, Telegram flags, dashboard address and the other global sections;
# - `assets.json` — one block per asset class: `crypto_spot`, `crypto_futures`, `forex`, `options`;
# - `strategies.json` — the strategies by id, their parameters and indicator specs.
#
# This lesson is the models: what each key means and which values it accepts. Reading the files,
# environment overrides, secrets and the training-first guard are `config.loading`; reading and
# changing keys of the loaded configuration is `config.access`. `tradingbot.config` re-exports all three.

# %%
#| export
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tradingbot.fileio import atomic_write_text
from tradingbot.paths import workspace_path

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## The models
# Every section forbids unknown keys: a misspelt key is an error, not a silently ignored setting.

# %%
#| export
AssetName = Literal["crypto_spot", "crypto_futures", "forex", "options"]
ASSETS = get_args(AssetName)  # the asset classes, in the order assets.json lists them
Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
Pct = float  # percentages are written as percent: 15 means 15 %


class Strict(BaseModel):
    "A config section: unknown keys are refused, assignments are validated."
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
    max_record_age_days: int = Field(30, ge=1)  # a validation (and the data it ran on) older than this allows no live


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
    kind: Literal["rule", "ml", "rl", "python"] = "rule"  # python: a class of your own, named by class_path
    class_path: str | None = None  # with kind 'python': 'package.module:Class' (a Strategy subclass)
    description: str = ""
    assets: list[AssetName] = []
    params: dict[str, float | int | str | bool] = {}
    indicators: list[dict[str, Any]] = []  # indicator spec entries: {"name": "rsi", "period": 2, ...}
    gates: Gates | None = None  # per-strategy gate overrides

    @model_validator(mode="after")
    def _indicator_names(self):
        for i, entry in enumerate(self.indicators):
            if not isinstance(entry.get("name"), str):
                raise ValueError(f"indicators[{i}] needs a string 'name'")
        if (self.kind == "python") != (self.class_path is not None):
            raise ValueError("kind 'python' needs class_path 'package.module:Class' (and only it has one)")
        if self.class_path is not None and not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", self.class_path):
            raise ValueError(f"class_path must read 'package.module:Class', got {self.class_path!r}")
        return self


class StrategiesConfig(Strict):
    "strategies.json"
    strategies: dict[str, StrategyConfig] = Field(min_length=1)


MODELS = {"config": AppConfig, "assets": AssetsConfig, "strategies": StrategiesConfig}

# %% [markdown]
# A model refuses what the file must not say, with pydantic's message; `config.loading` turns it into
# the one line `file: key: rule` an operator reads.

# %%
test_eq(AppConfig().SAFETY.MAX_STOP_LOSS_PCT, 15.0)  # every key has a default but the asset blocks
test_fail(lambda: Safety(MAX_STOP_LOSS_PCT=20), contains="less than or equal to 15")
test_fail(lambda: AppConfig.model_validate({"SAFETY": {"MAX_STOPLOSS_PCT": 5}}), contains="Extra inputs are not permitted")
test_fail(lambda: Paper(PAPER_RESET_THRESHOLD=2000), contains="PAPER_RESET_THRESHOLD must be below PAPER_EQUITY_START")
test_fail(lambda: Risk(tiers=[RiskTier(min_equity=5000, risk_pct=1), RiskTier(min_equity=1000, risk_pct=2)]),
          contains="strictly increasing min_equity")
test_fail(lambda: Forex(symbols=["EURUSD"], fees=Fees(maker_pct=0, taker_pct=0), sl_pct_min=5, sl_pct_max=2),
          contains="sl_pct_min must not exceed sl_pct_max")
test_fail(lambda: StrategyConfig(indicators=[{"period": 2}]), contains="indicators[0] needs a string 'name'")
test_fail(lambda: StrategyConfig(assets=["stocks"]), contains="crypto_spot")
test_eq(ASSETS, ("crypto_spot", "crypto_futures", "forex", "options"))
test_eq(tuple(AssetsConfig.model_fields), ASSETS)

# %% [markdown]
# An older `assets.json` without `qty_step` gets the venue's usual lot step:

# %%
_assets = AssetsConfig.model_validate(json.loads(Path("../config/assets.json").read_text()))
_raw = json.loads(Path("../config/assets.json").read_text())
del _raw["forex"]["qty_step"], _raw["crypto_futures"]["qty_step"]
_old = AssetsConfig.model_validate(_raw)
test_eq((_old.forex.qty_step, _old.crypto_futures.qty_step, _old.crypto_spot.qty_step),
        (1.0, 1e-3, _assets.crypto_spot.qty_step))


# %% [markdown]
# ## JSON Schema
# Editors and other tools validate the files with the JSON Schemas exported from the models; they live in
# `config/schema/` and the cell below keeps them identical to the models.

# %%
#| export
def json_schemas() -> dict[str, dict]:
    "JSON Schema of each config file, from its model."
    return {section: model.model_json_schema() for section, model in MODELS.items()}


def export_json_schemas(directory: str | Path | None = None,  # default config/schema
                        ) -> list[Path]:  # the files written
    "Write `<section>.schema.json` for each config file into `directory`."
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
with tempfile.TemporaryDirectory() as d:
    test_eq([json.loads(p.read_text()) for p in export_json_schemas(d)], list(json_schemas().values()))
