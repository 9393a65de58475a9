# %% [markdown]
# # Performance metrics
#
# > Sharpe, Sortino, max drawdown, profit factor, historical CVaR, win rate, expectancy, exposure and turnover — on per-bar returns with quantstats' definitions, and on trades.

# %%
#| default_exp validation.metrics

# %% [markdown]
# A strategy is promoted or rejected on a handful of numbers, so each must mean exactly one thing.
# On **returns** (one simple return per bar, `pd.Series` or ndarray) every function here computes what
# quantstats 0.0.86 computes for the same series — the test file `tests/test_metrics_quantstats.py`
# holds them to 1e-12 on real samples and hypothesis-generated series. Conventions, all quantstats':
#
# - `NaN` is a bar without an observation: statistics skip it, equity curves carry it as flat.
#   An infinite return is bad data and raises.
# - Sharpe = mean / std(ddof=1) · √periods; Sortino = mean / √(Σ r² over r<0 / n) · √periods.
# - Losses are negative: `max_drawdown` and `cvar` return numbers ≤ 0 (the gate compares their size).
# - Returns are taken as returns. quantstats guesses that a series with no negative value and one above
#   1 is a *price* series and converts it; we never guess.
#
# On **trades** (one row per closed trade) the win rate, profit factor and expectancy are the trader's
# per-trade numbers, which quantstats does not have: it counts *bars*, so one trade that spans three up
# bars and two down bars is three wins and two losses there.

# %%
#| export
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tradingbot.data.timeframes import timeframe_delta

# %%
#| hide
import matplotlib.pyplot as plt
import quantstats as qs
from fastcore.test import test_close, test_eq, test_fail

from tradingbot.data.samples import load_sample

spx_ret = load_sample("spx_1d").close.pct_change().dropna()   # 5030 daily S&P 500 returns
btc_ret = load_sample("btcusd_1h").close.pct_change().dropna()  # 20110 hourly BTC-USD returns

# %% [markdown]
# ## Periods per year
# Annualising multiplies a per-bar ratio by √(bars per year), and how many bars a year holds depends on
# when the market is open: crypto trades 24/7 (365 days), stocks 252 sessions of 6.5 hours, forex 24
# hours on 260 weekdays, CME futures 23 hours on 252 days. So a daily bar is 252 periods for the
# S&P 500 but 365 for BTC. Pass the calendar of the market you trade.

# %%
#| export
CALENDARS = {  # trading days per year, trading hours per day
    "crypto": (365, 24.0),
    "stocks": (252, 6.5),
    "forex": (260, 24.0),
    "futures": (252, 23.0),
}


def periods_per_year(timeframe: str,           # bar timeframe, e.g. "1h" or "1d"
                     calendar: str = "crypto",  # one of CALENDARS: when the market trades
                    ) -> float:                 # bars in one trading year
    "Number of `timeframe` bars in a trading year of `calendar` (1d: 365 crypto, 252 stocks)."
    if calendar not in CALENDARS:
        raise ValueError(f"unknown calendar {calendar!r}; use one of {', '.join(CALENDARS)}")
    days, hours = CALENDARS[calendar]
    bar = timeframe_delta(timeframe)
    if bar >= pd.Timedelta(days=1):
        return float(days)
    return days * hours * (pd.Timedelta(hours=1) / bar)


# %%
test_eq(periods_per_year("1d", "stocks"), 252)
test_eq(periods_per_year("1d"), 365)
test_eq(periods_per_year("1h"), 24 * 365)
test_eq(periods_per_year("1m", "forex"), 260 * 24 * 60)
test_eq(periods_per_year("15m", "stocks"), 252 * 26)
test_fail(lambda: periods_per_year("1h", "nyse"), contains="unknown calendar 'nyse'")


# %% [markdown]
# ## Sharpe and Sortino
# Both are per-bar ratios scaled by √periods. `rf` is an *annual* risk-free rate, turned into a
# per-bar rate as $(1+rf)^{1/periods} - 1$ and subtracted first. A series with no spread (or no loss,
# for Sortino) has no defined ratio: NaN.

# %%
#| export
def _as_returns(returns) -> np.ndarray:
    "Returns as a float64 1-D array (NaN = no observation); raises on infinities."
    if isinstance(returns, (pd.Series, pd.Index)):
        arr = returns.to_numpy(dtype="float64", na_value=np.nan)
    else:
        arr = np.asarray(returns, dtype="float64")
    if arr.ndim != 1:
        raise ValueError(f"returns must be one-dimensional, got shape {arr.shape}; pass one strategy at a time")
    if np.isinf(arr).any():
        first = int(np.flatnonzero(np.isinf(arr))[0])
        raise ValueError(f"returns hold {int(np.isinf(arr).sum())} infinite value(s), first at position {first}; "
                         f"a return of ±inf means a price of 0 — fix the data")
    return arr


def observed_returns(returns,              # per-bar simple returns (Series or array); NaN = no observation
                     rf: float = 0.0,      # annual risk-free rate, subtracted per bar
                     periods: float = 252, # bars per year, to turn `rf` into a per-bar rate
                    ) -> np.ndarray:       # the observed returns, in excess of the per-bar rate
    "The non-missing returns, in excess of the per-bar risk-free rate."
    r = _as_returns(returns)
    r = r[~np.isnan(r)]
    return r - ((1 + rf) ** (1 / periods) - 1) if rf else r


def sharpe(returns,              # per-bar simple returns (Series or array)
           periods: float = 252,  # bars per year (see `periods_per_year`)
           rf: float = 0.0,       # annual risk-free rate
           annualize: bool = True, # times √periods; False: the per-bar ratio
          ) -> float:
    "Sharpe ratio: mean / std(ddof=1) of excess returns, times √periods."
    r = observed_returns(returns, rf, periods)
    sd = r.std(ddof=1) if len(r) > 1 else np.nan
    ratio = r.mean() / sd if sd > 0 else np.nan
    return float(ratio * math.sqrt(periods) if annualize else ratio)


def sortino(returns,               # per-bar simple returns (Series or array)
            periods: float = 252,  # bars per year (see `periods_per_year`)
            rf: float = 0.0,       # annual risk-free rate
            annualize: bool = True, # times √periods; False: the per-bar ratio
           ) -> float:
    "Sortino ratio: mean / downside deviation √(Σ r² over r<0 / n), times √periods."
    r = observed_returns(returns, rf, periods)
    downside = math.sqrt((r[r < 0] ** 2).sum() / len(r)) if len(r) else 0.0
    ratio = r.mean() / downside if downside > 0 else np.nan
    return float(ratio * math.sqrt(periods) if annualize else ratio)


# %% [markdown]
# By hand on five returns, then against quantstats on twenty years of the S&P 500:

# %%
r = np.array([0.01, -0.02, 0.03, np.nan, -0.01, 0.02])
obs = r[~np.isnan(r)]
test_close(sharpe(r, periods=1), obs.mean() / obs.std(ddof=1), eps=1e-15)
test_close(sortino(r, periods=1), 0.006 / math.sqrt((0.02**2 + 0.01**2) / 5), eps=1e-15)
test_close(sharpe(pd.Series(r), periods=252), sharpe(r, periods=1) * math.sqrt(252), eps=1e-15)
test_eq([math.isnan(sharpe([0.01, 0.01, 0.01])), math.isnan(sortino([0.01, 0.02]))], [True, True])
test_close(sharpe(spx_ret), qs.stats.sharpe(spx_ret), eps=1e-12)
test_close(sortino(spx_ret), qs.stats.sortino(spx_ret), eps=1e-12)
test_close(sharpe(spx_ret, rf=0.02), qs.stats.sharpe(spx_ret, rf=0.02), eps=1e-12)
test_fail(lambda: sharpe([0.1, np.inf]), contains="1 infinite value(s), first at position 1")
print(f"S&P 500 1999-2018: Sharpe {sharpe(spx_ret):.3f}, Sortino {sortino(spx_ret):.3f}")


# %% [markdown]
# ## Drawdown
# Equity compounds the returns from 1.0; the drawdown is the fall from the running peak, where the
# peak includes that starting 1.0 — so a loss on the very first bar is a drawdown too (quantstats adds
# the same phantom starting point).

# %%
#| export
def _equity(r: np.ndarray) -> np.ndarray:
    "Equity compounded from 1.0, missing returns held flat."
    return np.cumprod(1.0 + np.nan_to_num(r, nan=0.0))


def drawdown(returns,  # per-bar simple returns (Series or array)
            ) -> np.ndarray | pd.Series:  # equity / running peak - 1 after each bar
    "Drawdown after each bar: equity / running peak - 1 (≤ 0); a Series if `returns` is one."
    equity = _equity(_as_returns(returns))
    dd = equity / np.maximum(np.maximum.accumulate(equity), 1.0) - 1.0
    return pd.Series(dd, index=returns.index, name="drawdown") if isinstance(returns, pd.Series) else dd


def max_drawdown(returns,  # per-bar simple returns (Series or array)
                ) -> float:
    "Maximum drawdown of the compounded equity curve, as a fraction ≤ 0 (-0.2 = 20 % below the peak)."
    dd = drawdown(_as_returns(returns))
    return float(dd.min()) if len(dd) else 0.0


# %%
test_close(max_drawdown([0.1, -0.5, 0.2]), -0.5, eps=1e-15)
test_close(max_drawdown([-0.1, 0.05]), -0.1, eps=1e-15)      # the first bar's loss counts
test_close(drawdown(np.array([0.1, -0.1, np.nan, 0.2])), [0, -0.1, -0.1, 0], eps=1e-15)
test_eq(max_drawdown([0.01, 0.02]), 0.0)
test_close(max_drawdown(spx_ret), qs.stats.max_drawdown(spx_ret), eps=1e-12)
print(f"S&P 500 max drawdown 1999-2018: {max_drawdown(spx_ret):.1%}")

# %% [markdown]
# The picture of it: the S&P 500's equity under its running peak, and below, the drawdown — how far
# under that peak each day closed. `max_drawdown` is the lowest point of the lower panel (2009), and
# the long stretches below zero are what a drawdown gate protects against: 2000-2007 was spent
# climbing back.

# %%
equity = (1 + spx_ret).cumprod()
peak = np.maximum(equity.cummax(), 1.0)
dd = drawdown(spx_ret)
test_close(dd, equity / peak - 1, eps=1e-12)                   # the drawdown is the gap under the peak
test_eq((dd.idxmin().year, dd.min()), (2009, max_drawdown(spx_ret)))

fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 4.5), height_ratios=[2, 1])
top.plot(equity.index, equity, lw=1, label="equity")
top.plot(peak.index, peak, lw=1, ls="--", color="grey", label="running peak")
top.set(ylabel="equity (start = 1)", title="S&P 500 1999-2018: equity and drawdown")
top.legend(loc="upper left")
bottom.fill_between(dd.index, dd, 0, color="tab:red", alpha=0.5, lw=0)
bottom.annotate(f"max drawdown {dd.min():.1%}", xy=(dd.idxmin(), dd.min()), xytext=(15, 5),
                textcoords="offset points")
bottom.set(ylabel="drawdown")
bottom.yaxis.set_major_formatter("{x:.0%}");


# %% [markdown]
# ## Tail risk: historical CVaR
# The conditional value at risk at confidence $c$ is the mean of the returns at or below their
# $(1-c)$ quantile (linear interpolation, as pandas): the average loss of the worst 5 % of bars at
# $c = 0.95$. This is quantstats' `cvar(..., method="historical")`; its default is a *parametric*
# (normal) estimate, which understates fat tails, so we do not use it.

# %%
#| export
def cvar(returns,                  # per-bar simple returns (Series or array)
         confidence: float = 0.95, # share of bars above the tail: 0.95 averages the worst 5 %
        ) -> float:                # a return ≤ 0 for a losing tail
    "Historical CVaR (expected shortfall): mean of returns at or below the (1-confidence) quantile."
    r = observed_returns(returns)
    if not len(r):
        return np.nan
    tail = r[r <= np.quantile(r, 1 - confidence)]
    return float(tail.mean())


# %%
test_close(cvar(np.arange(-10, 10) / 100, confidence=0.9), np.mean([-0.10, -0.09]), eps=1e-15)
test_close(cvar(spx_ret), qs.stats.cvar(spx_ret, method="historical"), eps=1e-12)
test_close(cvar(btc_ret, 0.99), qs.stats.cvar(btc_ret, confidence=0.99, method="historical"), eps=1e-12)
assert cvar(spx_ret) < qs.stats.cvar(spx_ret)   # the historical tail is fatter than the normal one

# %% [markdown]
# On the histogram of the S&P 500's daily returns: the 5 % quantile (the VaR) cuts off the tail, and
# the CVaR is the mean of what lies beyond it. A normal distribution with the same mean and spread
# (the dashed curve, quantstats' default) puts less weight out there, so its CVaR is milder.

# %%
var95 = np.quantile(spx_ret, 0.05)
tail = spx_ret[spx_ret <= var95]
test_close(tail.mean(), cvar(spx_ret), eps=1e-15)
test_eq(len(tail), int(np.ceil(0.05 * len(spx_ret))))   # the worst 5 % of 5030 days

fig, ax = plt.subplots(figsize=(9, 3.5))
bins = np.linspace(-0.1, 0.1, 161)
ax.hist(spx_ret, bins=bins, color="tab:blue", alpha=0.6, label="daily returns")
ax.hist(tail, bins=bins, color="tab:red", alpha=0.8, label="worst 5 % (the tail)")
x = np.linspace(-0.1, 0.1, 400)
normal = np.exp(-0.5 * ((x - spx_ret.mean()) / spx_ret.std()) ** 2) / (spx_ret.std() * math.sqrt(2 * math.pi))
ax.plot(x, normal * len(spx_ret) * (bins[1] - bins[0]), "k--", lw=1, label="normal, same mean and std")
ax.axvline(var95, color="grey", lw=1)
ax.axvline(cvar(spx_ret), color="tab:red", lw=2)
at_top = ax.get_xaxis_transform()   # x in returns, y as a fraction of the axes' height
ax.text(var95, 0.93, f" VaR 95 % {var95:.1%}", transform=at_top, color="grey")
ax.text(cvar(spx_ret), 0.83, f"CVaR 95 % {cvar(spx_ret):.1%} ", transform=at_top, color="tab:red", ha="right")
ax.set(xlim=(-0.08, 0.08), yscale="log", ylim=(0.8, None), xlabel="daily return", ylabel="days (log scale)",
       title="S&P 500 daily returns: historical CVaR is the mean of the tail")
ax.xaxis.set_major_formatter("{x:.0%}")
ax.legend(loc="center right");


# %% [markdown]
# ## Per-bar win rate, profit factor, expectancy
# On returns these count *bars*, as quantstats does. Bars with a zero return (flat, no position) are
# neither wins nor losses for the win rate; the profit factor puts them on the winning side, which adds
# nothing. Expectancy is the win rate times the average win plus the loss rate times the average loss;
# with quantstats' win rate that is exactly the mean of the non-zero returns (`qs.stats.avg_return`).

# %%
#| export
def bar_win_rate(returns,  # per-bar simple returns (Series or array)
            ) -> float:
    "Share of non-zero returns that are positive (0.0 when every return is zero)."
    r = observed_returns(returns)
    active = np.count_nonzero(r)
    return float(np.count_nonzero(r > 0) / active) if active else 0.0


def profit_factor(returns,  # per-bar returns, or any gains and losses (a trades' pnl)
                 ) -> float:
    "Sum of gains / |sum of losses| (inf with no loss, 0.0 with neither)."
    r = observed_returns(returns)
    gains, losses = r[r >= 0].sum(), abs(r[r < 0].sum())
    if losses == 0:
        return 0.0 if gains == 0 else math.inf
    return float(gains / losses)


def bar_expectancy(returns,  # per-bar simple returns (Series or array)
              ) -> float:
    "Average return of a bar with a position: win rate · avg win + loss rate · avg loss."
    r = observed_returns(returns)
    active = r[r != 0]
    return float(active.mean()) if len(active) else np.nan


# %%
r = [0.02, -0.01, 0.0, 0.03, -0.02, np.nan]
test_eq(bar_win_rate(r), 0.5)
test_close(profit_factor(r), 0.05 / 0.03, eps=1e-15)
test_close(bar_expectancy(r), 0.5 * 0.025 + 0.5 * -0.015, eps=1e-15)
test_eq((bar_win_rate([0.0, 0.0]), profit_factor([0.0]), profit_factor([0.01])), (0.0, 0.0, math.inf))
for ours, theirs in [(bar_win_rate, qs.stats.win_rate), (profit_factor, qs.stats.profit_factor),
                     (bar_expectancy, qs.stats.avg_return)]:
    test_close(ours(btc_ret), theirs(btc_ret), eps=1e-12)


# %% [markdown]
# ## Exposure and turnover
# Both read the **position** per bar, as a signed fraction of equity (1 = fully long, -0.5 = half short,
# 0 = flat), held over the bar. Exposure is the share of bars with a position. Turnover is how much of
# the book changes hands: the mean |Δposition| per bar (entering from flat counts), times `periods` for
# a yearly figure — 2.0 means the capital traded twice a year, counting both legs. quantstats'
# `exposure` reads non-zero *returns* instead and rounds up to a whole percent; we do neither.

# %%
#| export
def exposure(positions,  # position per bar, signed fraction of equity (or per-bar returns)
            ) -> float:
    "Share of observed bars with a non-zero position (or non-zero return, if given returns)."
    p = observed_returns(positions)
    return float(np.count_nonzero(p) / len(p)) if len(p) else 0.0


def turnover(positions,              # position per bar, signed fraction of equity
             periods: float = 252,   # bars per year (1 = per bar)
            ) -> float:              # mean |Δposition| per bar, times periods
    "Average absolute position change per bar, annualised (both legs of a round trip count)."
    p = np.nan_to_num(_as_returns(positions), nan=0.0)
    if not len(p):
        return 0.0
    return float(np.abs(np.diff(p, prepend=0.0)).mean() * periods)


# %%
pos = np.array([0, 1, 1, 0, -0.5, -0.5, 0, 0])
test_eq(exposure(pos), 0.5)
test_close(turnover(pos, periods=1), (1 + 1 + 0.5 + 0.5) / 8, eps=1e-15)
test_close(turnover(pos, periods=252), 3 / 8 * 252, eps=1e-12)
test_eq(exposure(pd.Series([0.0, np.nan, 1.0])), 0.5)

# %% [markdown]
# ## Trades
# A trades frame has one row per closed trade. The trade metrics need:
#
# | column | meaning |
# |---|---|
# | `entry_ts`, `exit_ts` | UTC timestamps of the fill that opened and the fill that closed the trade |
# | `pnl` | profit in account currency, after fees, slippage and funding |
# | `return` | `pnl` as a fraction of the capital the trade committed |
#
# Other columns are ignored. A trade with `pnl == 0` counts in the trade count but is not a win:
# after costs, a scratch trade is no evidence of skill.

# %%
#| export
TRADE_COLUMNS = ("entry_ts", "exit_ts", "pnl", "return")


def check_trades(trades: pd.DataFrame,    # one row per closed trade
                 columns=TRADE_COLUMNS,   # the columns the caller reads
                ) -> pd.DataFrame:
    "`trades` after checking it is a DataFrame with `columns` and finite pnl/return values."
    if not isinstance(trades, pd.DataFrame):
        raise TypeError(f"trades must be a DataFrame with columns {list(columns)}, got {type(trades).__name__}")
    missing = [c for c in columns if c not in trades.columns]
    if missing:
        raise ValueError(f"trades lack columns {missing}; a trades frame needs {list(TRADE_COLUMNS)}")
    for col in {"pnl", "return"} & set(columns):
        if not np.isfinite(trades[col].to_numpy(dtype="float64", na_value=np.nan)).all():
            raise ValueError(f"trades column {col!r} holds NaN or infinite values; only closed trades belong here")
    return trades


def trade_count(trades: pd.DataFrame,  # one row per closed trade
               ) -> int:
    "Number of closed trades."
    return len(check_trades(trades, ()))


def trade_win_rate(trades: pd.DataFrame,  # closed trades with a `pnl` column
                  ) -> float:
    "Share of closed trades with a positive pnl (NaN without trades)."
    pnl = check_trades(trades, ("pnl",))["pnl"].to_numpy(dtype="float64")
    return float((pnl > 0).mean()) if len(pnl) else np.nan


def trade_profit_factor(trades: pd.DataFrame,  # closed trades with a `pnl` column
                       ) -> float:
    "Gross profit / gross loss of the trades' pnl (inf with no loss, 0.0 with neither)."
    return profit_factor(check_trades(trades, ("pnl",))["pnl"])


def trade_expectancy(trades: pd.DataFrame,  # closed trades with the `column` to average
                     column: str = "pnl",  # "pnl" (currency per trade) or "return" (fraction per trade)
                    ) -> float:
    "Average outcome of a trade, winners and losers together (NaN without trades)."
    values = check_trades(trades, (column,))[column].to_numpy(dtype="float64")
    return float(values.mean()) if len(values) else np.nan


# %%
t0 = pd.Timestamp("2024-01-01", tz="UTC")
trades = pd.DataFrame({"entry_ts": t0 + pd.to_timedelta([0, 2, 5, 9], unit="h"),
                       "exit_ts": t0 + pd.to_timedelta([1, 4, 8, 10], unit="h"),
                       "pnl": [30.0, -10.0, 0.0, -5.0], "return": [0.03, -0.01, 0.0, -0.005]})
test_eq((trade_count(trades), trade_win_rate(trades)), (4, 0.25))
test_close(trade_profit_factor(trades), 30 / 15, eps=1e-15)
test_close(trade_expectancy(trades), 15 / 4, eps=1e-15)
test_close(trade_expectancy(trades, "return"), 0.015 / 4, eps=1e-15)
test_fail(lambda: trade_win_rate(trades.drop(columns="pnl")), contains="trades lack columns ['pnl']")
test_fail(lambda: trade_profit_factor(trades.assign(pnl=[1, np.nan, 0, 0])), contains="'pnl' holds NaN")


# %% [markdown]
# ## Summary
# `summary` gathers everything reports and the promotion gate read, in one dict with a fixed set of
# keys, and each key means one thing everywhere in the project: `max_drawdown` and `cvar` are losses as
# negative fractions, and `win_rate`, `profit_factor`, `expectancy` are **per trade** (what a trader
# means; `BacktestResult.stats` uses the same keys the same way), while their per-bar cousins are named
# `bar_win_rate`, `bar_profit_factor` and `bar_expectancy`. What cannot be computed from the inputs given
# is NaN (no `trades`, no trade metrics), and NaN fails every gate comparison, so a missing input can
# never pass a gate. `periods` has no default: a daily series annualised as 252 sessions when it trades
# 365 days is the silent error this avoids. Exposure and turnover come from `positions` when given;
# without them exposure falls back to the share of non-zero returns and turnover is NaN.

# %%
#| export
def summary(returns,                  # per-bar simple returns (Series or array)
            trades: pd.DataFrame | None = None,  # closed trades (see TRADE_COLUMNS)
            positions=None,           # position per bar, signed fraction of equity
            *,
            periods: float,           # bars per year (see `periods_per_year`): required, never a silent 252
            rf: float = 0.0,          # annual risk-free rate for Sharpe and Sortino
            confidence: float = 0.95, # CVaR confidence
           ) -> dict:
    "Every metric of this module for one strategy, keyed by name (NaN where an input is missing)."
    r = observed_returns(returns)
    have_trades = trades is not None
    return {
        "periods": len(r),
        "total_return": float(np.prod(1.0 + r) - 1.0),
        "volatility": float(r.std(ddof=1) * math.sqrt(periods)) if len(r) > 1 else np.nan,
        "sharpe": sharpe(returns, periods, rf),
        "sortino": sortino(returns, periods, rf),
        "max_drawdown": max_drawdown(returns),
        "cvar": cvar(returns, confidence),
        "bar_profit_factor": profit_factor(returns),
        "bar_win_rate": bar_win_rate(returns),
        "bar_expectancy": bar_expectancy(returns),
        "exposure": exposure(returns if positions is None else positions),
        "turnover": np.nan if positions is None else turnover(positions, periods),
        "trades": trade_count(trades) if have_trades else np.nan,
        "win_rate": trade_win_rate(trades) if have_trades else np.nan,
        "profit_factor": trade_profit_factor(trades) if have_trades else np.nan,
        "expectancy": trade_expectancy(trades) if have_trades else np.nan,
        "expectancy_return": trade_expectancy(trades, "return") if have_trades else np.nan,
    }


# %% [markdown]
# Buy-and-hold BTC over the hourly sample, annualised on the 24/7 calendar:

# %%
s = summary(btc_ret, periods=periods_per_year("1h", "crypto"), positions=np.ones(len(btc_ret)))
test_close(s["sharpe"], qs.stats.sharpe(btc_ret, periods=24 * 365), eps=1e-12)
test_eq((s["periods"], s["exposure"], math.isnan(s["trades"])), (len(btc_ret), 1.0, True))
test_close(s["turnover"], 24 * 365 / len(btc_ret), eps=1e-12)   # one entry, never exited
test_close(s["total_return"], btc_ret.add(1).prod() - 1, eps=1e-9)
s2 = summary(btc_ret, trades=trades, periods=24 * 365)
test_eq(list(s2) , list(s))
test_eq((s2["trades"], s2["win_rate"], math.isnan(s2["turnover"])), (4, 0.25, True))
{k: round(v, 4) for k, v in s.items()}
