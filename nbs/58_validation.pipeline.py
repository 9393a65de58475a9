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

import hashlib
import json
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from tradingbot.config import get_key
from tradingbot.data.samples import SAMPLES, load_sample
from tradingbot.data.store import load_local
from tradingbot.execution.fills import FillConfig
from tradingbot.fileio import to_jsonable
from tradingbot.labeling import tag_regimes
from tradingbot.strategies.base import Strategy, make_strategy
from tradingbot.validation.backtest import ASSET_CALENDARS, BacktestResult, calendar_of
from tradingbot.validation.gate import Verdict, evaluate_gates
from tradingbot.validation.metrics import periods_per_year, summary
from tradingbot.validation.overfit import deflated_sharpe_ratio, probability_of_backtest_overfitting
from tradingbot.validation.report import code_commit, data_hash
from tradingbot.validation.splits import WalkForward
from tradingbot.validation.stress import bootstrap_trades, cost_shocks, perturb_parameters, regime_slices, reorder_trades

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail

# %% [markdown]
# ## Data, asset and costs
# `data` is a DataFrame of bars, a bundled sample name, or `venue:symbol:timeframe` of the local parquet
# cache. The **asset** decides how the strategy is measured: its fees, lot step, minimum notional, stop
# band, shorting rule, the paper session's starting equity and the risk sizing of paper and live — so the
# gate judges the trade count, Sharpe, drawdown, profit factor and CVaR of the strategy *as it will
# trade*. A sample that stands for an asset (`btcusd_1h` → `crypto_spot`, `eurusd_1h` → `forex`) says
# which; otherwise pass `asset=`. Data no asset trades (the S&P 500 index sample) can be validated as
# research with `sizing="cash"` — a record that can never make an asset eligible for live (the gate
# checks the asset it was made for).

# %%
#| export
_VENUE_ASSETS = {"bybit": ("crypto_spot", "crypto_futures"), "ibkr": ("forex", "options")}
RESEARCH_COSTS = {"taker_fee_pct": 0.05, "maker_fee_pct": 0.02, "slippage_pct": 0.02}  # sizing='cash' with no asset


@dataclass(frozen=True)
class Dataset:
    "Bars to validate on, with what decides their annualisation and costs."
    name: str  # sample name, cache key, or the frame's attrs['name']
    bars: pd.DataFrame  # one symbol's bars
    timeframe: str  # their timeframe, e.g. '1h'
    calendar: str | None  # a key of metrics.CALENDARS
    asset: str | None  # the asset of assets.json the bars stand for, if one does


def load_dataset(data: str | pd.DataFrame,  # a frame of bars, a sample name, or venue:symbol:timeframe
                 ) -> Dataset:
    "Bars and what they stand for: a bundled sample by name, `venue:symbol:timeframe` from the cache, or a frame."
    if isinstance(data, pd.DataFrame):
        tf = data.attrs.get("timeframe")
        if not tf:
            raise ValueError("the bars' timeframe is unknown: set bars.attrs['timeframe'] (e.g. '1h')")
        sample = SAMPLES.get(data.attrs.get("name", ""))  # a cut of a bundled sample still stands for its asset
        asset = sample.asset if sample is not None and get_key(f"assets.{sample.asset}") else None
        return Dataset(data.attrs.get("name", "frame"), data, tf, calendar_of(data), asset)
    if data in SAMPLES:
        s = SAMPLES[data]
        return Dataset(data, load_sample(data), s.timeframe, ASSET_CALENDARS.get(s.asset),
                       s.asset if get_key(f"assets.{s.asset}") else None)
    parts = data.split(":")
    if len(parts) != 3:
        raise ValueError(f"data {data!r}: use a sample name ({', '.join(SAMPLES)}) or venue:symbol:timeframe")
    venue, symbol, timeframe = parts
    bars = load_local(venue, symbol, timeframe)
    bars.attrs.update(name=data, timeframe=timeframe)
    return Dataset(data, bars, timeframe, "forex" if venue == "ibkr" else "crypto", None)


def resolve_asset(strategy: Strategy,  # the strategy (its strategies.json assets narrow a cache key's venue)
                  ds: Dataset,  # the bars and what they stand for
                  asset: str | None,  # the asset asked for (None: the data's)
                  sizing: str | None,  # 'cash' for a research run
                  ) -> str | None:  # the asset to trade under, or None for research sizing
    "The asset whose rules the validation trades under (None: a research run with sizing='cash')."
    if asset is not None or ds.asset is not None:
        return asset or ds.asset
    if sizing == "cash":
        return None
    venue = ds.name.split(":")[0] if ":" in ds.name else None
    candidates = [a for a in (get_key(f"strategies.strategies.{strategy.strategy_id}.assets") or [])
                  if venue and a in _VENUE_ASSETS.get(venue, ())]
    if len(candidates) == 1:
        return candidates[0]
    raise ValueError(f"{ds.name}: no asset of config/assets.json trades these bars, so the gate cannot measure the "
                     "strategy as it will trade. Pass asset= (e.g. asset='crypto_spot') to validate with that asset's "
                     "costs, venue limits and risk sizing, or sizing='cash' for a research validation")


# %%
ds = load_dataset("btcusd_1h")
test_eq((ds.timeframe, ds.calendar, ds.asset), ("1h", "crypto", "crypto_spot"))
test_eq((load_dataset("spx_1d").calendar, load_dataset("spx_1d").asset), ("stocks", None))
test_fail(lambda: load_dataset("btc"), contains="use a sample name")
test_eq((load_dataset(ds.bars.iloc[:100]).calendar, load_dataset(ds.bars.iloc[:100]).asset), ("crypto", "crypto_spot"))


# %% [markdown]
# ## One run
# `run_strategy` is the single path from a strategy to a backtest: the same call serves the main run, the
# trials and every stress scenario — `Strategy.backtest` with the asset's rules (or research sizing),
# and `costs` as overrides of the fill model's fields (what the cost shocks scale).

# %%
#| export
@dataclass(frozen=True)
class Run:
    "A backtest with its per-bar returns (what stress and metrics consume)."
    result: BacktestResult  # the backtest
    returns: pd.Series  # its per-bar returns
    trades: pd.DataFrame  # its closed trades


def run_strategy(strategy: Strategy,  # the strategy, with its parameters
                 bars: pd.DataFrame,  # one symbol's bars
                 costs: dict,  # FillConfig fields (the asset's fill model, or research costs)
                 asset: str | None = None,  # trade under this asset's rules (None: research, all-in)
                 init_cash: float | None = None,  # starting equity (default: the paper session's, or 10,000)
                 ) -> Run:
    "Backtest `strategy` on `bars` as the asset trades it (or all-in for research): next-open fills."
    options = {"asset": asset} if asset else {"sizing": "cash", "init_cash": init_cash or 10_000.0}
    if asset and init_cash is not None:
        options["init_cash"] = init_cash
    res = strategy.backtest(bars, price="next_open", fill=FillConfig(**costs), **options)
    return Run(res, res.returns, res.trades)


def runner(strategy: Strategy,  # the candidate
           bars: pd.DataFrame,  # one symbol's bars
           asset: str | None,  # the asset's rules (None: research)
           ):
    "A `run(params, costs)` callable for the stress functions."
    return lambda params, costs: run_strategy(strategy.with_params(params), bars, costs, asset)


def default_costs(asset: str | None,  # an asset of assets.json (None: research costs)
                  ) -> dict:
    "The fill model's fields a validation trades with: the asset's, exactly as paper fills, or research costs."
    if asset is None:
        return dict(RESEARCH_COSTS)
    fill = FillConfig.for_asset(asset)
    return {f.name: getattr(fill, f.name) for f in fields(fill) if f.name != "funding_rate"} | (
        {"funding_rate": fill.funding_rate} if fill.funding_rate is not None else {})


# %%
spx = load_dataset("spx_1d")
r = run_strategy(make_strategy("rsi2"), spx.bars, default_costs(None))
assert len(r.trades) > 50 and r.returns.index.equals(spx.bars.index)
test_eq(set(r.trades.exit_reason) <= {"signal", "stop_loss", "time_stop"}, True)
r2 = run_strategy(make_strategy("rsi2"), spx.bars, default_costs(None))
test_eq(r.returns.equals(r2.returns), True)  # deterministic
test_eq(default_costs("crypto_spot")["taker_fee_pct"], get_key("assets.crypto_spot.fees.taker_pct"))


# %% [markdown]
# ## Trials, walk-forward and overfitting
# Sharpe ratios passed to the deflated Sharpe ratio are per bar (not annualised), as the formula expects.

# %%
#| export
def trial_returns(strategy: Strategy,  # the candidate
                  bars: pd.DataFrame,  # one symbol's bars
                  costs: dict,  # FillConfig fields
                  asset: str | None = None,  # the asset's rules (None: research)
                  ) -> tuple[pd.DataFrame, list]:  # per-bar returns by grid set, and the grid
    "Per-bar returns of every parameter set of the strategy's grid (column 0 is the candidate)."
    grid = strategy.grid()
    cols = {i: run_strategy(strategy.with_params(p), bars, costs, asset).returns for i, p in enumerate(grid)}
    return pd.DataFrame(cols), grid


def _per_bar_sharpe(r: pd.DataFrame) -> np.ndarray:
    sd = r.std(ddof=1).to_numpy()
    return np.where(sd > 0, r.mean().to_numpy() / np.where(sd > 0, sd, 1), np.nan)


def walk_forward(trials: pd.DataFrame,  # per-bar returns by grid set (column 0: the candidate)
                 grid: list,  # the parameter sets of the columns
                 n_splits: int,  # walk-forward folds
                 periods: float,  # bars per year
                 ) -> pd.DataFrame:  # one row per fold: spans, the chosen set, in- and out-of-sample Sharpe
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
def params_hash(params: dict,  # a strategy's parameters
                ) -> str:  # sha256 hex of their canonical JSON
    "The fingerprint of a parameter set: what a validation record and a live switch must agree on."
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Validation:
    "Everything `validate_strategy` measured; `record()` is its JSON form."
    strategy: str  # the strategy id
    params: dict  # its parameters
    data: str  # the data's name
    seed: int  # the Monte-Carlo seed
    costs: dict  # the fill model's fields it traded with
    data_hash: str  # sha256 of the bars
    commit: str  # the code's git commit
    periods: float  # bars per year
    run: Run  # the candidate's backtest
    metrics: dict  # `metrics.summary` of it
    trials: pd.DataFrame  # per-bar returns of every grid set
    grid: list  # the grid's parameter sets
    deflated_sharpe: float  # the deflated Sharpe ratio over the trials
    pbo: object  # the probability of backtest overfitting (CSCV result)
    walk_forward: pd.DataFrame  # the anchored walk-forward table
    stress: dict = field(default_factory=dict)  # stress tables: reorder, bootstrap, parameters, costs, regimes
    gates: dict = field(default_factory=dict)  # the thresholds it was judged by
    verdict: Verdict | None = None  # the gate's verdict
    asset: str | None = None  # the asset whose rules it traded under (None: research sizing)
    sizing: str = "risk"  # 'risk' (the asset's rules) or 'cash' (research)
    timeframe: str = ""  # the bars' timeframe
    validated_at: str = ""  # when it ran, ISO-8601 UTC (the gate's maximum age counts from here)

    def plot(self) -> object:
        "Equity against buy-and-hold, the walk-forward's in- and out-of-sample Sharpe, and the trials behind the DSR."
        import matplotlib.pyplot as plt
        fig = plt.figure(figsize=(10, 6.5))
        grid = fig.add_gridspec(2, 2, height_ratios=(1.2, 1))
        top, wf_ax, trials_ax = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
        res = self.run.result
        top.plot(res.equity.index, res.equity.to_numpy(), lw=0.9,
                 label=f"{self.strategy} ({self.asset or 'research, all-in'})")
        if res.closes is not None:
            hold = res.closes.iloc[:, 0] / res.closes.iloc[0, 0] * res.init_cash
            top.plot(hold.index, hold.to_numpy(), lw=0.7, color="grey", label="buy and hold")
        top.set_title(f"{self.strategy} on {self.data}: " + ("PASSED" if self.verdict.passed else "FAILED the gate"))
        top.legend(loc="upper left", fontsize="small")
        wf = self.walk_forward
        x = np.arange(len(wf))
        wf_ax.bar(x - 0.2, wf.is_sharpe, 0.4, label="in sample (best of the grid)")
        wf_ax.bar(x + 0.2, wf.oos_sharpe, 0.4, label="out of sample")
        wf_ax.axhline(0, color="k", lw=0.8)
        wf_ax.set(xticks=x, xlabel="walk-forward fold", ylabel="Sharpe", title="walk-forward")
        wf_ax.legend(fontsize="small")
        sharpes = _per_bar_sharpe(self.trials) * np.sqrt(self.periods)
        trials_ax.hist(sharpes[np.isfinite(sharpes)], bins=min(30, max(5, len(sharpes))), color="tab:grey")
        trials_ax.axvline(sharpes[0], color="tab:red", lw=2, label="the candidate")
        trials_ax.set(xlabel="Sharpe of each trial", title=f"{len(self.grid)} trials: deflated Sharpe "
                                                          f"{self.deflated_sharpe:.2f}, PBO {self.pbo.pbo:.2f}")
        trials_ax.legend(fontsize="small")
        fig.tight_layout()
        return fig

    def record(self) -> dict:
        "What goes to logs/validation: inputs, provenance, metrics and the verdict."
        wf = self.walk_forward.assign(chosen=self.walk_forward.chosen.map(str)).reset_index()
        index = self.run.returns.index
        return {"strategy": self.strategy, "params": self.params, "params_hash": params_hash(self.params),
                "asset": self.asset, "sizing": self.sizing, "data": self.data, "timeframe": self.timeframe,
                "data_start": index[0].isoformat(), "data_end": index[-1].isoformat(), "seed": self.seed,
                "validated_at": self.validated_at,
                "costs": to_jsonable(self.costs), "data_hash": self.data_hash, "commit": self.commit,
                "periods": self.periods, "metrics": to_jsonable(self.metrics), "n_trials": len(self.grid),
                "deflated_sharpe": to_jsonable(self.deflated_sharpe), "pbo": to_jsonable(self.pbo.pbo),
                "walk_forward": to_jsonable(wf.to_dict(orient="records")), "gates": self.gates,
                "verdict": self.verdict.to_dict() if self.verdict else None}



# %% [markdown]
# `validate_strategy` takes a `Strategy` — a registered id, or an instance, e.g. a class of your own — and
# the data as a frame, a sample or a cache key.

# %%
#| export
def validate_strategy(strategy: Strategy | str,  # a Strategy instance, or a registered / strategies.json id
                      data: str | pd.DataFrame = "btcusd_1h",  # bars, a sample name, or venue:symbol:timeframe
                      params: dict | None = None,  # overrides of the strategy's parameters
                      gates: dict | None = None,  # overrides of VALIDATION.gates
                      seed: int | None = None,  # Monte-Carlo seed (default VALIDATION.seed)
                      costs: dict | None = None,  # FillConfig fields overriding the asset's fill model
                      n_sims: int = 1000,  # Monte-Carlo paths
                      progress: bool = False,  # show a progress bar over the steps
                      asset: str | None = None,  # validate under this asset's rules (default: the data's asset)
                      sizing: str | None = None,  # 'cash' for a research validation of data no asset trades
                      ) -> Validation:
    "Backtest, trials, walk-forward, stress, overfitting statistics and the gate verdict for one strategy."
    from tqdm.auto import tqdm
    strategy = make_strategy(strategy, params) if isinstance(strategy, str) else (
        strategy.with_params(params) if params else strategy)
    ds = load_dataset(data)
    asset = resolve_asset(strategy, ds, asset, sizing)
    if sizing not in (None, "cash", "risk"):
        raise ValueError(f"sizing must be 'risk' (the asset's rules) or 'cash' (research), got {sizing!r}")
    if sizing == "cash":
        asset = None
    steps = tqdm(total=5, desc=f"validate {strategy.strategy_id}", disable=not progress)
    seed = get_key("VALIDATION.seed") if seed is None else seed
    costs = {**default_costs(asset), **(costs or {})}
    calendar = ASSET_CALENDARS.get(asset) if asset else ds.calendar
    if calendar is None:
        raise ValueError(f"{ds.name}: the market's calendar is unknown; set bars.attrs['calendar'] "
                         "('crypto', 'stocks', 'forex' or 'futures') or pass asset=")
    periods = periods_per_year(ds.timeframe, calendar)
    gates = {**get_key("VALIDATION.gates"),
             **(get_key(f"strategies.strategies.{strategy.strategy_id}.gates") or {}), **(gates or {})}
    main = run_strategy(strategy, ds.bars, costs, asset)
    metrics = summary(main.returns, main.trades, periods=periods, confidence=gates["cvar_alpha"])
    steps.update()
    trials, grid = trial_returns(strategy, ds.bars, costs, asset)
    dsr = deflated_sharpe_ratio(main.returns, trials_sharpe=_per_bar_sharpe(trials))
    pbo = probability_of_backtest_overfitting(trials.to_numpy(), n_blocks=16)
    steps.update()
    wf = walk_forward(trials, grid, get_key("VALIDATION.walk_forward_splits"), periods)
    steps.update()
    stress = _stress(strategy, ds, main, costs, asset, periods, seed, n_sims)
    steps.update()
    verdict = evaluate_gates(metrics, gates, dsr)
    steps.update()
    steps.close()
    return Validation(strategy.strategy_id, strategy.params, ds.name, seed, costs, data_hash(ds.bars), code_commit(),
                      periods, main, metrics, trials, grid, dsr, pbo, wf, stress, gates, verdict, asset,
                      "risk" if asset else "cash", ds.timeframe, pd.Timestamp.now(tz="UTC").isoformat())


def _stress(strategy, ds, main, costs, asset, periods, seed, n_sims) -> dict:
    run = runner(strategy, ds.bars, asset)
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
# RSI-2 on hourly BTC, measured as `crypto_spot` will trade it: the $10 rule below $1,000, risk tiers
# from $1,000 (the paper bankroll) up, the spot fees, lots and stop band. The verdict says which rules fail and by how much.

# %%
v = validate_strategy("rsi2", "btcusd_1h", n_sims=200)
rec = v.record()
test_eq((rec["asset"], rec["sizing"], rec["n_trials"]), ("crypto_spot", "risk", 18))
test_eq(rec["params_hash"], params_hash(make_strategy("rsi2").params))
test_eq((rec["data_start"], rec["data_end"]), (v.run.returns.index[0].isoformat(), v.run.returns.index[-1].isoformat()))
test_eq(rec["verdict"]["passed"], False)
assert 0 <= rec["deflated_sharpe"] <= 1 and 0 <= rec["pbo"] <= 1
test_eq(len(v.walk_forward), get_key("VALIDATION.walk_forward_splits"))
first_entry = v.run.trades.iloc[0]
assert 10 < first_entry.qty * first_entry.entry_price <= 250.01  # $1,000: 2 % at risk, at most a quarter of equity
pd.Series(v.metrics)[["trades", "sharpe", "max_drawdown", "profit_factor", "cvar"]]

# %% [markdown]
# The picture of a validation: the equity the gate judged, how the grid's best set did out of sample in
# each walk-forward fold, and where the candidate stands among the trials the deflated Sharpe ratio
# discounts it by.

# %%
v.plot();

# %% [markdown]
# The S&P 500 sample is an index no asset trades here: validating it asks for a choice, and
# `sizing="cash"` makes it a research run (all-in, research costs) whose record names no asset.

# %%
test_fail(lambda: validate_strategy("rsi2", "spx_1d"), contains="no asset of config/assets.json trades these bars")
research = validate_strategy("rsi2", "spx_1d", n_sims=200, sizing="cash")
test_eq((research.record()["asset"], research.record()["sizing"]), (None, "cash"))
assert any(reason.startswith("trades:") for reason in research.record()["verdict"]["reasons"])
again = validate_strategy("rsi2", "spx_1d", n_sims=200, sizing="cash").record()
test_eq({k: v for k, v in again.items() if k != "validated_at"},  # same inputs, same numbers (a later run)
        {k: v for k, v in research.record().items() if k != "validated_at"})

# %%
json.dumps(rec);  # the record is plain JSON
