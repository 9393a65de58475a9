# %% [markdown]
# # Validating a strategy
#
# > `validate_strategy`: backtest through the fill model, metrics, walk-forward, stress, overfitting statistics and the gate, in one reproducible record.

# %%
#| default_exp validation.pipeline

# %% [markdown]
# One call runs everything the promotion gate needs, on one dataset:
#
# 1. **Backtest** the strategy as configured: signals at bar close, fills at the next open, the asset's
#    fees and slippage, ATR stop and time stop (`validation.backtest`).
# 2. **Trials**: the strategy's whole `search_space` grid is backtested too. The grid is the search a
#    researcher would run, so its size and its Sharpe ratios feed the **deflated Sharpe ratio**, and its
#    returns matrix feeds the **probability of backtest overfitting** (CSCV).
# 3. **Walk-forward** (anchored): in each fold the grid's best set on the training bars is chosen and
#    judged on the following test bars — how the search would have done out of sample.
# 4. **Stress**: trade reordering and bootstrap, parameter perturbation, cost shocks, regime slices.
# 5. **Gate**: `evaluate_gates` with the configured thresholds.
#
# The record carries the parameters, the seed, the data hash and the code commit, so a report can be
# reproduced exactly.

# %%
#| export
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tradingbot.config import get_key
from tradingbot.data.samples import SAMPLES, load_sample
from tradingbot.data.store import load_local
from tradingbot.execution.fills import FillConfig
from tradingbot.labeling import tag_regimes
from tradingbot.strategies.base import Strategy
from tradingbot.strategies.rules import make_strategy
from tradingbot.validation.backtest import BacktestResult, backtest
from tradingbot.validation.gate import Verdict, evaluate_gates
from tradingbot.validation.metrics import periods_per_year, summary
from tradingbot.validation.overfit import deflated_sharpe_ratio, probability_of_backtest_overfitting
from tradingbot.validation.report import code_commit, data_hash
from tradingbot.validation.splits import WalkForward
from tradingbot.validation.stress import bootstrap_trades, cost_shocks, perturb_parameters, regime_slices, reorder_trades

# %%
#| hide
from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Data and costs
# `data` is a bundled sample name or `venue:symbol:timeframe` of the local parquet cache. The sample's
# asset class decides its calendar (bars per year) and, where the configuration has that asset, its fees.

# %%
#| export
_SAMPLE_CALENDAR = {"crypto_spot": "crypto", "forex": "forex", "index": "stocks", "futures": "futures"}
_VENUE_CALENDAR = {"bybit": "crypto", "ibkr": "forex"}
DEFAULT_COSTS = {"taker_fee_pct": 0.05, "maker_fee_pct": 0.02, "slippage_pct": 0.02, "latency_bars": 0}


@dataclass(frozen=True)
class Dataset:
    "Bars to validate on, with what decides their annualisation and costs."
    name: str
    bars: pd.DataFrame
    timeframe: str
    calendar: str
    asset: str | None


def load_dataset(data: str) -> Dataset:
    "A bundled sample by name, or `venue:symbol:timeframe` from the local cache."
    if data in SAMPLES:
        s = SAMPLES[data]
        return Dataset(data, load_sample(data), s.timeframe, _SAMPLE_CALENDAR.get(s.asset, "crypto"),
                       s.asset if get_key(f"assets.{s.asset}") else None)
    parts = data.split(":")
    if len(parts) != 3:
        raise ValueError(f"data {data!r}: use a sample name ({', '.join(SAMPLES)}) or venue:symbol:timeframe")
    venue, symbol, timeframe = parts
    return Dataset(data, load_local(venue, symbol, timeframe), timeframe, _VENUE_CALENDAR.get(venue, "crypto"), None)


def default_costs(asset: str | None) -> dict:
    "Fill-model costs for validation: the asset's configured fees, else DEFAULT_COSTS."
    if asset is None:
        return dict(DEFAULT_COSTS)
    fees = get_key(f"assets.{asset}.fees")
    return {**DEFAULT_COSTS, "taker_fee_pct": fees["taker_pct"], "maker_fee_pct": fees["maker_pct"]}


# %%
ds = load_dataset("btcusd_1h")
test_eq((ds.timeframe, ds.calendar, ds.asset), ("1h", "crypto", "crypto_spot"))
test_eq(default_costs("crypto_spot")["taker_fee_pct"], 0.1)
test_eq(load_dataset("spx_1d").calendar, "stocks")
test_fail(lambda: load_dataset("btc"), contains="use a sample name")


# %% [markdown]
# ## One run
# `run_strategy` is the single path from a strategy to a backtest: the same call serves the main run, the
# trials and every stress scenario. Its returns are the equity curve's bar-to-bar changes.

# %%
#| export
@dataclass(frozen=True)
class Run:
    "A backtest with its per-bar returns (what stress and metrics consume)."
    result: BacktestResult
    returns: pd.Series
    trades: pd.DataFrame


def run_strategy(strategy: Strategy, bars: pd.DataFrame, costs: dict, init_cash: float = 10_000.0) -> Run:
    "Backtest `strategy` on `bars` with `costs` (FillConfig fields): all-in sizing, next-open fills."
    sig = strategy.signals(bars)
    res = backtest(bars, sig.entries, sig.exits, price="next_open", sizing="cash", init_cash=init_cash,
                   stop_distance=sig.stop_distance, time_stop_bars=sig.time_stop_bars, fill=FillConfig(**costs))
    returns = res.equity.pct_change().fillna(0.0).rename("returns")
    return Run(res, returns, res.trades)


def runner(strategy_id: str, bars: pd.DataFrame):
    "A `run(params, costs)` callable for the stress functions."
    return lambda params, costs: run_strategy(make_strategy(strategy_id, params), bars, costs)


# %%
spx = load_dataset("spx_1d")
r = run_strategy(make_strategy("rsi2"), spx.bars, default_costs(None))
assert len(r.trades) > 50 and r.returns.index.equals(spx.bars.index)
test_eq(set(r.trades.exit_reason) <= {"signal", "stop_loss", "time_stop", "end"}, True)
r2 = run_strategy(make_strategy("rsi2"), spx.bars, default_costs(None))
test_eq(r.returns.equals(r2.returns), True)  # deterministic


# %% [markdown]
# ## Trials, walk-forward and overfitting
# Sharpe ratios passed to the deflated Sharpe ratio are per bar (not annualised), as the formula expects.

# %%
#| export
def trial_returns(strategy_id: str, strategy: Strategy, bars: pd.DataFrame, costs: dict) -> tuple[pd.DataFrame, list]:
    "Per-bar returns of every parameter set of the strategy's grid (column 0 is the candidate)."
    grid = strategy.grid()
    cols = {i: run_strategy(make_strategy(strategy_id, p), bars, costs).returns for i, p in enumerate(grid)}
    return pd.DataFrame(cols), grid


def _per_bar_sharpe(r: pd.DataFrame) -> np.ndarray:
    sd = r.std(ddof=1).to_numpy()
    return np.where(sd > 0, r.mean().to_numpy() / np.where(sd > 0, sd, 1), np.nan)


def walk_forward(trials: pd.DataFrame, grid: list, n_splits: int, periods: float) -> pd.DataFrame:
    "Anchored walk-forward: pick the best grid set on each training span, measure it on the next test span."
    rows = []
    for fold, (train, test) in enumerate(WalkForward(n_splits).split(trials)):
        best = int(np.nanargmax(_per_bar_sharpe(trials.iloc[train])))
        oos = trials.iloc[test, best]
        rows.append({"fold": fold, "train_start": trials.index[train[0]], "test_start": trials.index[test[0]],
                     "test_end": trials.index[test[-1]], "chosen": grid[best],
                     "is_sharpe": summary(trials.iloc[train, best], periods=periods)["sharpe"],
                     "oos_sharpe": summary(oos, periods=periods)["sharpe"],
                     "oos_return": float((1 + oos).prod() - 1),
                     "candidate_oos_sharpe": summary(trials.iloc[test, 0], periods=periods)["sharpe"]})
    return pd.DataFrame(rows).set_index("fold")


# %% [markdown]
# ## The whole validation

# %%
#| export
@dataclass
class Validation:
    "Everything `validate_strategy` measured; `record()` is its JSON form."
    strategy: str
    params: dict
    data: str
    seed: int
    costs: dict
    data_hash: str
    commit: str
    periods: float
    run: Run
    metrics: dict
    trials: pd.DataFrame
    grid: list
    deflated_sharpe: float
    pbo: object
    walk_forward: pd.DataFrame
    stress: dict = field(default_factory=dict)
    gates: dict = field(default_factory=dict)
    verdict: Verdict | None = None

    def record(self) -> dict:
        "What goes to logs/validation: inputs, provenance, metrics and the verdict."
        wf = self.walk_forward.assign(chosen=self.walk_forward.chosen.map(str)).reset_index()
        return {"strategy": self.strategy, "params": self.params, "data": self.data, "seed": self.seed,
                "costs": self.costs, "data_hash": self.data_hash, "commit": self.commit, "periods": self.periods,
                "metrics": _plain(self.metrics), "n_trials": len(self.grid),
                "deflated_sharpe": _plain(self.deflated_sharpe), "pbo": _plain(self.pbo.pbo),
                "walk_forward": _plain(wf.to_dict(orient="records")), "gates": self.gates,
                "verdict": self.verdict.to_dict() if self.verdict else None}


def _plain(x):
    "JSON-able: NaN -> None, numpy scalars -> Python, timestamps -> ISO strings."
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, pd.Timestamp):
        return x.isoformat()
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


# %%
#| export
def validate_strategy(strategy_id: str,  # a strategy id of strategies.json
                      data: str = "spx_1d",  # sample name or venue:symbol:timeframe
                      params: dict | None = None,  # overrides of the configured parameters
                      gates: dict | None = None,  # overrides of VALIDATION.gates
                      seed: int | None = None,  # Monte-Carlo seed (default VALIDATION.seed)
                      costs: dict | None = None,  # FillConfig fields (default: the asset's fees)
                      n_sims: int = 1000,  # Monte-Carlo paths
                      progress: bool = False,  # show a progress bar over the steps
                      ) -> Validation:
    "Backtest, trials, walk-forward, stress, overfitting statistics and the gate verdict for one strategy."
    from tqdm.auto import tqdm
    steps = tqdm(total=5, desc=f"validate {strategy_id}", disable=not progress)
    ds = load_dataset(data)
    strategy = make_strategy(strategy_id, params)
    seed = get_key("VALIDATION.seed") if seed is None else seed
    costs = costs or default_costs(ds.asset)
    periods = periods_per_year(ds.timeframe, ds.calendar)
    gates = {**get_key("VALIDATION.gates"), **(get_key(f"strategies.strategies.{strategy_id}.gates") or {}),
             **(gates or {})}
    main = run_strategy(strategy, ds.bars, costs)
    metrics = summary(main.returns, main.trades, periods=periods, confidence=gates["cvar_alpha"])
    steps.update()
    trials, grid = trial_returns(strategy_id, strategy, ds.bars, costs)
    dsr = deflated_sharpe_ratio(main.returns, trials_sharpe=_per_bar_sharpe(trials))
    pbo = probability_of_backtest_overfitting(trials.to_numpy(), n_blocks=16)
    steps.update()
    wf = walk_forward(trials, grid, get_key("VALIDATION.walk_forward_splits"), periods)
    steps.update()
    stress = _stress(strategy_id, strategy, ds, main, costs, periods, seed, n_sims)
    steps.update()
    verdict = evaluate_gates(metrics, gates, dsr)
    steps.update()
    steps.close()
    return Validation(strategy_id, strategy.params, data, seed, costs, data_hash(ds.bars), code_commit(), periods,
                      main, metrics, trials, grid, dsr, pbo, wf, stress, gates, verdict)


def _stress(strategy_id, strategy, ds, main, costs, periods, seed, n_sims) -> dict:
    run = runner(strategy_id, ds.bars)
    enough = len(main.trades) >= 2
    return {
        "reorder": reorder_trades(main.trades, n_sims, seed) if enough else None,
        "bootstrap": bootstrap_trades(main.trades, n_sims, seed) if enough else None,
        "parameters": perturb_parameters(run, strategy.params, costs, pct=0.1, periods=periods),
        "costs": cost_shocks(run, strategy.params, costs, periods=periods),
        "regimes": regime_slices(main.returns, tag_regimes(ds.bars).astype(object).reindex(main.returns.index),
                                 periods=periods),
    }


# %% [markdown]
# RSI-2 on twenty years of the S&P 500: a real edge, but far from the live gate's bar (500 trades,
# Sharpe 2) — the verdict says which rules fail and by how much.

# %%
v = validate_strategy("rsi2", "spx_1d", n_sims=200)
rec = v.record()
test_eq(rec["n_trials"], 18)
test_eq(rec["verdict"]["passed"], False)
assert any(reason.startswith("trades:") for reason in rec["verdict"]["reasons"])
assert 0 <= rec["deflated_sharpe"] <= 1 and 0 <= rec["pbo"] <= 1
test_eq(len(v.walk_forward), get_key("VALIDATION.walk_forward_splits"))
test_eq(validate_strategy("rsi2", "spx_1d", n_sims=200).record(), rec)  # same inputs, same record
pd.Series(v.metrics)[["trades", "sharpe", "max_drawdown", "trade_profit_factor", "cvar"]]

# %%
import json

json.dumps(rec);  # the record is plain JSON
