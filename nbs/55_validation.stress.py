# %% [markdown]
# # Stress tests
#
# > Monte-Carlo bootstrap and reordering of trade returns, parameter perturbation, cost and latency shocks, and metrics per market regime.

# %%
#| default_exp validation.stress

# %% [markdown]
# One backtest is one draw of luck. The tests here ask how a strategy's numbers move when the luck
# changes: other orders or samples of the same trades (Monte-Carlo), slightly different parameters,
# dearer execution, and other market regimes. None of them knows the backtester: a strategy is a
# callable `run(params: dict, costs: dict)` returning per-bar returns (a `pd.Series`) or an object
# with `.returns` and, optionally, `.trades` (see `tradingbot.validation.metrics`). Every random draw
# comes from a seeded `numpy` generator, so a report reruns to the same numbers.

# %%
#| export
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from tradingbot.validation.metrics import check_trades, summary

# %%
#| hide
import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail

from tradingbot.data.samples import load_sample
from tradingbot.validation.metrics import max_drawdown, sharpe

spx = load_sample("spx_1d")


# %% [markdown]
# A toy strategy on the S&P 500 to stress: long when the close is above its `lookback`-day average by
# more than `band`, flat otherwise. The position is decided at a bar's close and, after `latency` more
# bars, held over the next bar; each change of position pays `fee + slippage` on the traded fraction.
# It also lists its trades (one per run of being long). It loses money after costs — a toy to stress,
# not a strategy to trade.

# %%
class Outcome:
    "What a run returns: per-bar returns and closed trades."
    def __init__(self, returns, trades):
        self.returns, self.trades = returns, trades


def trades_of(position: pd.Series, returns: pd.Series) -> pd.DataFrame:
    "One row per run of non-zero position: entry/exit time, compounded return, pnl on $1,000."
    run_id = (position != position.shift()).cumsum()[position != 0]
    grouped = returns[position != 0].groupby(run_id)
    ret = grouped.apply(lambda r: (1 + r).prod() - 1)
    times = returns.index.to_series()[position != 0].groupby(run_id)
    return pd.DataFrame({"entry_ts": times.first().to_numpy(), "exit_ts": times.last().to_numpy(),
                         "return": ret.to_numpy(), "pnl": 1000 * ret.to_numpy()})


def ma_strategy(params: dict, costs: dict) -> Outcome:
    "Long/flat moving-average rule on the S&P 500 sample."
    close = spx.close
    signal = (close > close.rolling(params["lookback"]).mean() * (1 + params["band"])).astype(float)
    position = signal.shift(1 + costs.get("latency_bars", 0), fill_value=0.0)
    cost = position.diff().abs().fillna(position.abs()) * (costs["fee"] + costs["slippage"])
    returns = (position * close.pct_change().fillna(0) - cost).iloc[1:]
    return Outcome(returns, trades_of(position.iloc[1:], returns))


params, costs = {"lookback": 50, "band": 0.01}, {"fee": 0.0005, "slippage": 0.0002, "latency_bars": 0}
base = ma_strategy(params, costs)
print(f"{len(base.trades)} trades, Sharpe {sharpe(base.returns):.2f}, max drawdown {max_drawdown(base.returns):.1%}")


# %% [markdown]
# ## Monte-Carlo on trades
# A trade sequence's total return does not depend on its order, but its drawdown does: the same trades
# with the losers bunched together dig a deeper hole. **Reordering** (random permutations) shows that
# path risk alone; the sum of log returns is identical in every permutation, and so is the
# per-trade Sharpe ratio. **Bootstrapping** (drawing as many trades with replacement) also varies
# which trades happen, so it spreads the Sharpe ratio and the total return too.
#
# Both compound the trade returns one after another from equity 1.0 — a strategy that reinvests and
# holds one trade at a time. `log_return` is summed with `math.fsum`, which rounds exactly once, so
# permutations give bit-identical totals. `sharpe` is per trade times √`periods` (pass trades per
# year to annualise).

# %%
#| export
def path_stats(trade_returns: np.ndarray,  # one row per path, one column per trade, in order
               periods: float = 1,         # trades per year (1 = per-trade Sharpe ratio)
              ) -> pd.DataFrame:           # total_return, log_return, max_drawdown, sharpe per path
    "Outcome of each path of trade returns, compounded from equity 1.0."
    r = np.atleast_2d(np.asarray(trade_returns, dtype="float64"))
    equity = np.cumprod(1.0 + r, axis=1)
    peak = np.maximum(np.maximum.accumulate(equity, axis=1), 1.0)   # the starting 1.0 is a peak too
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = r.std(axis=1, ddof=1)
        sr = np.where(sd > 0, r.mean(axis=1) / sd, np.nan) * math.sqrt(periods)
    return pd.DataFrame({"total_return": equity[:, -1] - 1.0,
                         "log_return": [math.fsum(row) for row in np.log1p(r)],
                         "max_drawdown": np.minimum((equity / peak - 1.0).min(axis=1), 0.0),
                         "sharpe": sr})


def _trade_returns(trades) -> np.ndarray:
    "Per-trade returns from a trades frame (`return` column), a Series or an array."
    if isinstance(trades, pd.DataFrame):
        trades = check_trades(trades, ("return",))["return"]
    r = np.asarray(trades, dtype="float64")
    if r.ndim != 1 or len(r) < 2 or not np.isfinite(r).all() or (r <= -1).any():
        raise ValueError(f"need at least 2 finite trade returns above -1 (-100 %), got {len(r)} values")
    return r


# %%
three = [0.1, -0.5, 0.2]
test_close(path_stats(np.array([three])).iloc[0].tolist(),
           [1.1 * 0.5 * 1.2 - 1, math.log(1.1 * 0.5 * 1.2), -0.5, np.mean(three) / np.std(three, ddof=1)], eps=1e-12)
test_close(path_stats(np.array([[-0.1, 0.05]])).max_drawdown[0], -0.1, eps=1e-15)   # a first loss is a drawdown
test_close(path_stats(base.returns.to_numpy()[None]).max_drawdown[0], max_drawdown(base.returns), eps=1e-12)
test_fail(lambda: _trade_returns([0.1, -1.0]), contains="above -1 (-100 %), got 2 values")


# %%
#| export
def reorder_trades(trades,                # trades frame (`return` column), Series or array of trade returns
                   n_sims: int = 1000,    # random orders to draw
                   seed: int = 0,         # seed of the random generator (same seed, same draws)
                   periods: float = 1,    # trades per year, to annualise the Sharpe ratio
                  ) -> pd.DataFrame:      # path_stats of each permutation
    "Path outcomes of `n_sims` random orders of the same trades."
    r = _trade_returns(trades)
    rng = np.random.default_rng(seed)
    return path_stats(rng.permuted(np.tile(r, (n_sims, 1)), axis=1), periods)


def bootstrap_trades(trades,              # trades frame (`return` column), Series or array of trade returns
                     n_sims: int = 1000,  # samples to draw, each as many trades as `trades`
                     seed: int = 0,       # seed of the random generator (same seed, same draws)
                     periods: float = 1,  # trades per year, to annualise the Sharpe ratio
                    ) -> pd.DataFrame:    # path_stats of each sample
    "Path outcomes of `n_sims` samples of as many trades, drawn with replacement."
    r = _trade_returns(trades)
    rng = np.random.default_rng(seed)
    return path_stats(r[rng.integers(0, len(r), size=(n_sims, len(r)))], periods)


# %% [markdown]
# On the toy strategy's trades: every reordering ends at exactly the realised log return, while the
# drawdown spreads; the realised drawdown lies inside both distributions; the same seed gives the same
# draws.

# %%
realised = path_stats(base.trades["return"].to_numpy()[None]).iloc[0]
shuffled = reorder_trades(base.trades, n_sims=500, seed=1)
test_eq((shuffled.log_return == realised.log_return).all(), True)
test_close(shuffled.sharpe, realised.sharpe, eps=1e-12)
booted = bootstrap_trades(base.trades, n_sims=500, seed=1)
for sims in (shuffled, booted):
    assert sims.max_drawdown.quantile(0.01) <= realised.max_drawdown <= sims.max_drawdown.quantile(0.99)
assert booted.sharpe.std() > 0.1 * abs(realised.sharpe) and booted.log_return.std() > 0
test_eq(bootstrap_trades(base.trades, n_sims=50, seed=7), bootstrap_trades(base.trades, n_sims=50, seed=7))
assert not bootstrap_trades(base.trades, n_sims=50, seed=7).equals(bootstrap_trades(base.trades, n_sims=50, seed=8))
print(f"realised max drawdown {realised.max_drawdown:.1%}; 5th percentile reordered "
      f"{shuffled.max_drawdown.quantile(0.05):.1%}, bootstrapped {booted.max_drawdown.quantile(0.05):.1%}")

# %% [markdown]
# The picture: left, the equity fan of the 500 bootstrapped paths (each compounds its trades from
# 1.0; the band holds the middle 90 %) around the realised path; right, the distributions of the max
# drawdown. Reordering keeps every path's end point and moves only the drawdown; bootstrapping moves
# both, so its drawdowns spread wider. The realised drawdown is one draw among them — a gate on the
# 5th percentile asks for the drawdown the strategy could have had with the same trades.

# %%
r = base.trades["return"].to_numpy()
draws = np.random.default_rng(1).integers(0, len(r), size=(500, len(r)))   # bootstrap_trades' draws, seed 1
paths = np.hstack([np.ones((500, 1)), np.cumprod(1 + r[draws], axis=1)])   # equity from 1.0, trade by trade
test_close(paths[:, -1] - 1, booted.total_return, eps=1e-12)
test_close((paths / np.maximum.accumulate(paths, axis=1) - 1).min(axis=1), booted.max_drawdown, eps=1e-12)
realised_path = np.concatenate([[1.0], np.cumprod(1 + r)])

fig, (fan, hist) = plt.subplots(1, 2, figsize=(9, 3.6), width_ratios=[1.4, 1])
trade_no = np.arange(len(r) + 1)
fan.plot(trade_no, paths[:100].T, color="tab:blue", alpha=0.08, lw=0.8)
fan.fill_between(trade_no, *np.quantile(paths, [0.05, 0.95], axis=0), color="tab:blue", alpha=0.2, label="5-95 %")
fan.plot(trade_no, realised_path, color="black", lw=1.5, label="realised")
fan.set(xlabel="trade", ylabel="equity (start = 1)", title=f"Bootstrapped equity, {len(r)} trades")
fan.legend(loc="upper left")
bins = np.linspace(min(booted.max_drawdown.min(), shuffled.max_drawdown.min()), 0, 40)
hist.hist(shuffled.max_drawdown, bins=bins, alpha=0.6, label="reordered")
hist.hist(booted.max_drawdown, bins=bins, alpha=0.6, label="bootstrapped")
hist.axvline(realised.max_drawdown, color="black", lw=1.5, label="realised")
hist.set(xlabel="max drawdown", ylabel="paths", title="Max drawdown, 500 paths each")
hist.xaxis.set_major_formatter("{x:.0%}")
hist.legend(fontsize=8)
fig.tight_layout();


# %% [markdown]
# ## Parameter perturbation
# A real edge survives a small change of its parameters; a fitted one falls off a cliff. Every numeric
# parameter (int or float, not bool) is moved by −`pct` and +`pct` in turn, the others held; an int is
# rounded, and moved by at least 1 so it really changes. `n_random` more scenarios move all of them at
# once by independent uniform factors in [1 − pct, 1 + pct]. Each scenario's run is summarised with
# `metrics.summary`.

# %%
#| export
def run_outcome(out,  # what a `run(params, costs)` callable returned
               ) -> tuple[pd.Series, pd.DataFrame | None]:  # (returns, trades or None)
    "Returns and trades (or None) from what a `run` callable returned."
    if isinstance(out, pd.Series):
        return out, None
    if hasattr(out, "returns"):
        return out.returns, getattr(out, "trades", None)
    raise TypeError(f"run must return a returns Series or an object with .returns (and .trades), "
                    f"got {type(out).__name__}")


def _scaled(value, factor: float):
    "`value` times `factor`; an int is rounded and moved by at least 1."
    if isinstance(value, (int, np.integer)):
        moved = int(round(value * factor))
        return moved if moved != value or factor == 1 else value + (1 if factor > 1 else -1)
    return value * factor


def _numeric_keys(params: Mapping) -> list[str]:
    "Keys of the int and float parameters (bools excluded)."
    return [k for k, v in params.items()
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))]


def _scenario_table(run: Callable, scenarios: dict, periods: float, column: str) -> pd.DataFrame:
    "One row per scenario: its inputs in `column`, then summary metrics of its run (or why it could not run)."
    rows = {}
    for name, (params, costs) in scenarios.items():
        row = {column: params if column == "params" else costs, "error": ""}
        try:
            returns, trades = run_outcome(run(params, costs))
        except ValueError as exc:  # e.g. a perturbed period below an indicator's minimum: report, don't abort
            rows[name] = {**row, "error": str(exc)}
            continue
        rows[name] = {**row, **summary(returns, trades, periods=periods)}
    return pd.DataFrame.from_dict(rows, orient="index")


# %%
#| export
def perturb_parameters(run: Callable,          # run(params, costs) -> returns Series or object with .returns/.trades
                       params: dict,           # the chosen parameters
                       costs: dict | None = None,  # costs passed unchanged to every run
                       pct: float = 0.1,       # relative move of each parameter
                       n_random: int = 0,      # extra scenarios moving all parameters at once
                       seed: int = 0,          # seed of the random joint moves
                       periods: float = 252,   # bars per year for the metrics
                      ) -> pd.DataFrame:       # one row per scenario: params, then summary metrics
    "Metrics of `run` at `params` and at each parameter moved by ±pct (plus random joint moves)."
    keys, costs = _numeric_keys(params), dict(costs or {})
    if not keys:
        raise ValueError(f"no numeric parameter to perturb in {params}")
    scenarios = {"base": (dict(params), costs)}
    for k in keys:
        for sign, factor in (("-", 1 - pct), ("+", 1 + pct)):
            scenarios[f"{k}{sign}{pct:.0%}"] = ({**params, k: _scaled(params[k], factor)}, costs)
    rng = np.random.default_rng(seed)
    for i in range(n_random):
        factors = rng.uniform(1 - pct, 1 + pct, len(keys))
        scenarios[f"random_{i}"] = ({**params, **{k: _scaled(params[k], f) for k, f in zip(keys, factors)}}, costs)
    return _scenario_table(run, scenarios, periods, "params")


# %%
test_eq([_scaled(50, 0.9), _scaled(2, 1.1), _scaled(2, 0.9), _scaled(0.01, 1.1)], [45, 3, 1, 0.01 * 1.1])
test_eq(_numeric_keys({"a": 1, "b": 0.5, "flag": True, "name": "x"}), ["a", "b"])
table = perturb_parameters(ma_strategy, params, costs, pct=0.2, n_random=3, seed=5)
test_eq(list(table.index), ["base", "lookback-20%", "lookback+20%", "band-20%", "band+20%",
                            "random_0", "random_1", "random_2"])
test_eq([p["lookback"] for p in table.params.iloc[:3]], [50, 40, 60])
test_close(table.loc["base", "sharpe"], sharpe(base.returns), eps=1e-12)
test_eq(table.loc["base", "trades"], len(base.trades))
test_eq(table.drop(columns="params"),
        perturb_parameters(ma_strategy, params, costs, pct=0.2, n_random=3, seed=5).drop(columns="params"))
test_fail(lambda: perturb_parameters(ma_strategy, {"name": "x"}), contains="no numeric parameter")


def picky(params, costs):  # a strategy that refuses some perturbed values
    if params["lookback"] < 45:
        raise ValueError("lookback too short")
    return ma_strategy(params, costs)


t = perturb_parameters(picky, params, costs, pct=0.2)
test_eq((t.loc["lookback-20%", "error"], t.loc["base", "error"]), ("lookback too short", ""))
assert np.isnan(t.loc["lookback-20%", "sharpe"]) and np.isfinite(t.loc["lookback+20%", "sharpe"])
table[["sharpe", "max_drawdown", "trades", "win_rate"]].round(3)


# %% [markdown]
# ## Cost and latency shocks
# Backtests flatter execution. A shock is a function from a costs dict to a shocked costs dict;
# `scale_costs("fee", 2.0)` doubles every cost whose key contains "fee" (`fee`, `maker_fee`,
# `taker_fee`) and refuses a costs dict that has none, so a shock can never silently do nothing.
# `add_cost("latency_bars", 1)` adds one bar of latency (the fill model's `latency_bars`), from 0
# when absent. The defaults: 2× fees, 2× slippage, +1 latency.

# %%
#| export
def scale_costs(word: str,      # costs whose key contains this are scaled ("fee": maker_fee, taker_fee)
                factor: float,  # multiplier (2.0 doubles them)
               ) -> Callable[[dict], dict]:
    "A shock multiplying every cost whose key contains `word` by `factor`."
    def shock(costs: dict) -> dict:
        hit = [k for k in costs if word in k]
        if not hit:
            raise ValueError(f"cost shock '{word} x{factor}' matches no key of costs {sorted(costs)}; "
                             f"name the costs so a key contains {word!r}, or pass shocks without it")
        return {**costs, **{k: costs[k] * factor for k in hit}}
    return shock


def add_cost(key: str,       # the cost to raise, e.g. "latency_bars"
             amount: float,  # added to it (from 0 when the key is absent)
            ) -> Callable[[dict], dict]:
    "A shock adding `amount` to `costs[key]` (0 when absent)."
    return lambda costs: {**costs, key: costs.get(key, 0) + amount}


DEFAULT_SHOCKS = {"fees_2x": scale_costs("fee", 2.0), "slippage_2x": scale_costs("slippage", 2.0),
                  "latency_+1": add_cost("latency_bars", 1)}


def cost_shocks(run: Callable,               # run(params, costs) -> returns Series or object with .returns/.trades
                params: dict,                # the strategy's parameters, the same in every scenario
                costs: dict,                 # the baseline costs
                shocks: Mapping[str, Callable] = DEFAULT_SHOCKS,  # name -> costs -> shocked costs
                periods: float = 252,        # bars per year for the metrics
               ) -> pd.DataFrame:            # one row per scenario (base first): costs, then summary metrics
    "Metrics of `run` under the baseline costs and under each cost shock."
    scenarios = {"base": (params, dict(costs))}
    scenarios.update({name: (params, shock(dict(costs))) for name, shock in shocks.items()})
    return _scenario_table(run, scenarios, periods, "costs")


# %%
test_eq(scale_costs("fee", 2)({"maker_fee": 1, "taker_fee": 3, "slippage": 5}),
        {"maker_fee": 2, "taker_fee": 6, "slippage": 5})
test_eq(add_cost("latency", 1)({"fee": 0.1}), {"fee": 0.1, "latency": 1})
test_fail(lambda: scale_costs("slippage", 2)({"fee": 1}), contains="matches no key of costs ['fee']")
shocked = cost_shocks(ma_strategy, params, costs)
test_eq(list(shocked.index), ["base", "fees_2x", "slippage_2x", "latency_+1"])
test_eq(shocked.costs["fees_2x"], {"fee": 0.001, "slippage": 0.0002, "latency_bars": 0})
assert shocked.loc["fees_2x", "total_return"] < shocked.loc["base", "total_return"]
assert shocked.loc["slippage_2x", "sharpe"] < shocked.loc["base", "sharpe"]
test_close(shocked.loc["base", "sharpe"], sharpe(base.returns), eps=1e-12)
test_eq(costs, {"fee": 0.0005, "slippage": 0.0002, "latency_bars": 0})   # the caller's dict is untouched
shocked[["sharpe", "total_return", "max_drawdown"]].round(3)


# %% [markdown]
# ## Regime slices
# A strategy that earns only in trending markets should say so. Given one regime label per bar
# (e.g. `tradingbot.labeling.tag_regimes`: trending / ranging / volatile), `regime_slices` computes the
# metrics on each regime's bars. The bars of a regime are not contiguous, so its drawdown compounds
# them as if back to back. Bars without a label (warm-up) are left out.

# %%
#| export
def regime_slices(returns: pd.Series,   # per-bar returns
                  regimes: pd.Series,   # regime label per bar, same index as returns
                  periods: float = 252, # bars per year for the metrics
                 ) -> pd.DataFrame:     # one row per regime: bars, share, then summary metrics
    "Metrics of `returns` restricted to each regime's bars."
    if not isinstance(returns, pd.Series) or not isinstance(regimes, pd.Series):
        raise TypeError("returns and regimes must both be pd.Series on the same index")
    if not regimes.index.equals(returns.index):
        raise ValueError(f"regimes must be aligned to returns (same index); got {len(regimes)} labels for "
                         f"{len(returns)} returns — use regimes.reindex(returns.index)")
    labelled = regimes.notna()
    rows = {}
    for label, idx in returns[labelled].groupby(regimes[labelled]).groups.items():
        rows[label] = {"bars": len(idx), "share": len(idx) / int(labelled.sum()),
                       **summary(returns.loc[idx], periods=periods)}
    return pd.DataFrame.from_dict(rows, orient="index")


# %% [markdown]
# Simple labels on the S&P 500 (not the labeling module's): "volatile" when 20-day volatility is in the
# top third of its history so far, else "trending" when the close is more than 5 % from its 100-day
# average, else "ranging".

# %%
ret = spx.close.pct_change()
vol = ret.rolling(20).std()
volatile = vol > vol.expanding(250).quantile(2 / 3)
trending = (spx.close / spx.close.rolling(100).mean() - 1).abs() > 0.05
regimes = pd.Series(np.where(volatile, "volatile", np.where(trending, "trending", "ranging")), index=spx.index)
regimes[vol.expanding(250).count() < 250] = None
regimes = regimes.reindex(base.returns.index)
slices = regime_slices(base.returns, regimes)
test_eq(sorted(slices.index), ["ranging", "trending", "volatile"])
test_eq(slices.bars.sum(), regimes.notna().sum())
test_close(slices.share.sum(), 1.0, eps=1e-12)
test_close(slices.loc["volatile", "sharpe"], sharpe(base.returns[regimes == "volatile"]), eps=1e-12)
test_fail(lambda: regime_slices(base.returns, regimes.iloc[1:]), contains="must be aligned to returns")
slices[["bars", "share", "sharpe", "max_drawdown", "exposure"]].round(3)
