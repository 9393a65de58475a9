# %% [markdown]
# # Indicator registry
#
# > The registry of indicators `apply_indicators` can compute, and the TA-Lib-backed ones: SMA, EMA, MACD, RSI, Stochastic, Williams %R, ATR, Bollinger bands, MFI, OBV, KAMA, ADX, ROC, NATR.

# %%
#| default_exp indicators.registry

# %% [markdown]
# An indicator is registered once with everything the rest of the package needs to know about it:
# its parameters and their defaults, its outputs, how to compute them from bar arrays, its
# **lookback** (the number of leading NaN bars, TA-Lib's notion) and its **memory** (how many more
# bars a recursive indicator needs before the seed it started from no longer matters). The spec
# format, column names and `apply_indicators` live in `tradingbot.indicators.core`; this notebook and
# `tradingbot.indicators.composite` fill the registry.
#
# Every indicator TA-Lib has is TA-Lib's, called as is, so the conventions are TA-Lib's: Wilder
# smoothing for RSI, ATR and ADX; EMAs seeded with the SMA of their first `n` values; population
# standard deviation in bands; the first value at index = lookback.

# %%
#| export
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import talib

# %%
#| hide
import matplotlib.pyplot as plt
import pandas as pd
from fastcore.test import test_close, test_eq

from tradingbot.data.samples import load_sample

btc, spx = load_sample("btcusd_1h"), load_sample("spx_1d")
B = {k: btc[k].to_numpy() for k in btc.columns}   # bar arrays, as the compute functions take them
S = {k: spx[k].to_numpy() for k in spx.columns}


def same(a, b, rtol=1e-9):
    "Equal within `rtol` (relative to the largest value, absolute near 0) and NaN in the same places."
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    test_eq(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    test_close(a[ok], b[ok], eps=rtol * max(1.0, float(np.abs(b[ok]).max(initial=0))))


# %% [markdown]
# ## How long a seed is remembered
# A recursive filter $y_t = y_{t-1} + \alpha (x_t - y_{t-1})$ started from two different seeds gives
# two series whose gap shrinks by $(1 - \alpha)$ every bar. After
# $\lceil \log(10^{-12}) / \log(1 - \alpha) \rceil$ bars the gap is below $10^{-12}$ of the first one,
# a thousand times under the $10^{-9}$ that `warmup_bars` promises, which leaves room for a first gap
# up to a thousand times the value itself. EMA has $\alpha = 2 / (n + 1)$; Wilder's smoothing (RSI,
# ATR, ADX) has $\alpha = 1 / n$.

# %%
#| export
WARMUP_TOL = 1e-12  # relative size a seed's influence must decay to


def decay_bars(alpha: float,             # smoothing factor of the recursion, in (0, 1]
               tol: float = WARMUP_TOL,  # how small the seed's weight must become
              ) -> int:                  # bars until the seed's weight (1 - alpha)^bars <= tol
    "Bars a recursive filter with smoothing factor `alpha` needs to forget its seed to within `tol`."
    if alpha >= 1.0:
        return 0
    return math.ceil(math.log(tol) / math.log1p(-alpha))


# %%
test_eq(decay_bars(1 / 14), 373)        # Wilder 14: RSI and ATR forget their seed in 373 bars
test_eq(decay_bars(2 / 21), 277)        # EMA 20
test_eq(decay_bars(1.0), 0)
assert (1 - 1 / 14) ** decay_bars(1 / 14) <= 1e-12 < (1 - 1 / 14) ** (decay_bars(1 / 14) - 1)

# %% [markdown]
# Seen on real data: two EMA(20)s of the BTC-USD close, one seeded as TA-Lib does and one seeded 30 %
# too high, part by exactly that factor per bar.

# %%
x = B["close"]
ema = talib.EMA(x, 20)
alpha, off = 2 / 21, 0.3 * ema[19]
other = np.full_like(x, np.nan)
other[19] = ema[19] + off
for t in range(20, 19 + 400):
    other[t] = other[t - 1] + alpha * (x[t] - other[t - 1])
gap = np.abs(other - ema)[19:19 + 400]
test_close(gap / off, (1 - alpha) ** np.arange(400), eps=1e-9)
test_eq(bool(gap[decay_bars(alpha)] <= 1e-12 * off), True)
plt.figure(figsize=(7, 2.5)); plt.semilogy(gap / off); plt.axhline(1e-12, ls="--", c="k")
plt.title("EMA(20) on BTC-USD: a seed's influence decays geometrically"); plt.xlabel("bars after the seed");


# %% [markdown]
# ## The registry
# `compute(bars, source, **params)` gets `bars`, a mapping of column name to float64 array
# (`open high low close volume` and the derived `hl2 hlc3 ohlc4`), and `source`, the array named by
# the spec's `source` (the close unless it says otherwise). It returns one array per output.
# `warmup(params)` is what `warmup_bars` reports for one entry: lookback + memory + 1.

# %%
#| export
@dataclass(frozen=True)
class Indicator:
    "One registered indicator: its parameters and outputs, how to compute it, how much history it needs."
    name: str                                # the spec's "name" and the stem of its columns
    compute: Callable[..., tuple]            # (bars, source, **params) -> one float64 array per output
    params: Mapping[str, int | float]        # defaults, in the order they appear in column names
    outputs: tuple[str, ...]                 # the output equal to `name` is the main one
    lookback: Callable[..., int]             # (**params) -> leading NaN bars (the first value's index)
    memory: Callable[..., int]               # (**params) -> bars for a recursive seed to fade (0 if none)
    minimum: Mapping[str, float]             # smallest allowed value of each parameter
    check: Callable[..., str | None] | None  # (**params) -> what is wrong with a combination, or None
    uses_source: bool                        # accepts a "source" series (default close)
    cumulative: bool                         # a running total from the first bar: only its changes are local
    doc: str                                 # what it computes: the compute function's docstring

    def warmup(self,
               params: Mapping,  # parameter -> value, every parameter of the indicator
              ) -> int:          # bars: lookback + memory + 1
        "Bars of history after which the last value matches the full-history value (see `warmup_bars`)."
        return self.lookback(**params) + self.memory(**params) + 1


INDICATORS: dict[str, Indicator] = {}


def register(name: str,                      # the spec's "name"
             params: dict,                   # parameter -> default (its type is the parameter's type)
             outputs: tuple,                 # output names; the one equal to `name` is the main one
             lookback: Callable,             # (**params) -> leading NaN bars
             memory: Callable | None = None, # (**params) -> bars for a recursive seed to fade; None: 0
             minimum: dict | None = None,    # parameter -> smallest allowed value
             check: Callable | None = None,  # (**params) -> what is wrong with a combination, or None
             source: bool = False,           # accepts a "source" series
             cumulative: bool = False,       # a running total from the first bar (no window reproduces it)
            ) -> Callable:                   # decorator returning the compute function unchanged
    "Decorator adding the decorated compute function to `INDICATORS` under `name`."
    def add(compute: Callable) -> Callable:
        INDICATORS[name] = Indicator(name, compute, MappingProxyType(dict(params)), tuple(outputs), lookback,
                                     memory or (lambda **p: 0), MappingProxyType(dict(minimum or {})), check,
                                     source, cumulative, (compute.__doc__ or "").strip())
        return compute
    return add


# %% [markdown]
# Minimum parameter values are TA-Lib's own (`RSI` refuses a period of 1, `SMA` accepts it): a spec
# that breaks one is refused with a message before TA-Lib is called.
#
# ## Moving averages and MACD

# %%
#| export
@register("sma", {"period": 20}, ("sma",), lookback=lambda period: period - 1, minimum={"period": 1},
          source=True)
def sma(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: SMA reads `src`)
        src: np.ndarray,              # the series the entry's `source` names (default close)
        period: int,                  # bars in the window, >= 1
       ) -> tuple:                    # (sma,) in source units
    "Simple moving average."
    return (talib.SMA(src, period),)


@register("ema", {"period": 20}, ("ema",), lookback=lambda period: period - 1,
          memory=lambda period: decay_bars(2 / (period + 1)), minimum={"period": 1}, source=True)
def ema(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: EMA reads `src`)
        src: np.ndarray,              # the series the entry's `source` names (default close)
        period: int,                  # bars; alpha = 2 / (period + 1), >= 1
       ) -> tuple:                    # (ema,) in source units
    "Exponential moving average, alpha = 2 / (period + 1), seeded with the SMA of the first `period` values."
    return (talib.EMA(src, period),)


# %%
sma_ = sma(B, B["close"], 20)[0]
same(sma_, pd.Series(B["close"]).rolling(20).mean())
ema_ = ema(S, S["close"], 20)[0]
seeded = np.r_[S["close"][:20].mean(), S["close"][20:]]             # SMA seed, then the recursion
same(ema_[19:], pd.Series(seeded).ewm(alpha=2 / 21, adjust=False).mean())
test_eq(int(np.isnan(ema_).sum()), INDICATORS["ema"].lookback(period=20))


# %%
#| export
@register("macd", {"fast": 12, "slow": 26, "signal": 9}, ("macd", "signal", "hist"),
          lookback=lambda fast, slow, signal: slow - 1 + signal - 1,
          memory=lambda fast, slow, signal: decay_bars(2 / (slow + 1)) + decay_bars(2 / (signal + 1)),
          minimum={"fast": 2, "slow": 2, "signal": 1}, source=True,
          check=lambda fast, slow, signal: None if fast < slow else "fast must be shorter than slow")
def macd(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: MACD reads `src`)
         src: np.ndarray,              # the series the entry's `source` names (default close)
         fast: int,                    # bars of the fast EMA, < slow
         slow: int,                    # bars of the slow EMA
         signal: int,                  # bars of the EMA of the MACD line
        ) -> tuple:                    # (macd, signal, hist) in source units
    "MACD line EMA(fast) - EMA(slow), its EMA(signal) and their difference (histogram)."
    return talib.MACD(src, fast, slow, signal)


# %% [markdown]
# TA-Lib starts both EMAs of the MACD line at bar `slow - 1`, so the line is not `EMA(12) - EMA(26)`
# at first, and becomes it once the seeds have faded: that is exactly what `memory` accounts for.
# The signal is the EMA of the line (seeded inside TA-Lib from line values it does not output, so
# again equal once that seed has faded), and the histogram their difference.

# %%
line, signal_, hist = macd(S, S["close"], 12, 26, 9)
plain = talib.EMA(S["close"], 12) - talib.EMA(S["close"], 26)
assert abs(line[33] - plain[33]) > 0.1                                  # the seeds still differ...
gone = 25 + decay_bars(2 / 27)
same(line[gone:], plain[gone:])                                         # ...and have faded here
faded = 33 + decay_bars(2 / 10)
same(signal_[faded:], talib.EMA(line[33:], 9)[faded - 33:])
same(hist, line - signal_)
test_eq(int(np.isnan(line).sum()), INDICATORS["macd"].lookback(fast=12, slow=26, signal=9))


# %% [markdown]
# ## Oscillators
# RSI uses Wilder's smoothing ($\alpha = 1/n$) of gains and losses, seeded with their plain means over
# the first `n` changes. The reference below writes that out in Python.

# %%
#| export
@register("rsi", {"period": 14}, ("rsi",), lookback=lambda period: period,
          memory=lambda period: decay_bars(1 / period), minimum={"period": 2}, source=True)
def rsi(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: RSI reads `src`)
        src: np.ndarray,              # the series the entry's `source` names (default close)
        period: int,                  # bars of Wilder smoothing, >= 2
       ) -> tuple:                    # (rsi,), in [0, 100]
    "Relative strength index, Wilder smoothing, in [0, 100]."
    return (talib.RSI(src, period),)


# %%
def rsi_reference(x, n):
    change = np.diff(x)
    gain, loss = np.clip(change, 0, None), np.clip(-change, 0, None)
    out = np.full(len(x), np.nan)
    avg_gain, avg_loss = gain[:n].mean(), loss[:n].mean()
    for t in range(n, len(x)):
        if t > n:
            avg_gain = (avg_gain * (n - 1) + gain[t - 1]) / n
            avg_loss = (avg_loss * (n - 1) + loss[t - 1]) / n
        out[t] = 100 * avg_gain / (avg_gain + avg_loss)
    return out


for n in (2, 14):
    same(rsi(S, S["close"], n)[0], rsi_reference(S["close"], n))
r = rsi(B, B["close"], 14)[0]
assert np.nanmin(r) >= 0 and np.nanmax(r) <= 100


# %%
#| export
@register("stoch", {"fastk": 14, "slowk": 3, "slowd": 3}, ("k", "d"),
          lookback=lambda fastk, slowk, slowd: fastk - 1 + slowk - 1 + slowd - 1,
          minimum={"fastk": 1, "slowk": 1, "slowd": 1})
def stoch(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close
          src: np.ndarray,              # not read: uses high, low, close from `b`
          fastk: int,                   # bars of the high-low range of the raw %K
          slowk: int,                   # bars of the SMA smoothing the raw %K into %K
          slowd: int,                   # bars of the SMA of %K giving %D
         ) -> tuple:                    # (k, d), in [0, 100]
    "Slow stochastic: %K = SMA(slowk) of the raw %K over `fastk` bars, %D = SMA(slowd) of %K."
    return talib.STOCH(b["high"], b["low"], b["close"], fastk, slowk, 0, slowd, 0)


@register("willr", {"period": 14}, ("willr",), lookback=lambda period: period - 1, minimum={"period": 2})
def willr(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close
          src: np.ndarray,              # not read: uses high, low, close from `b`
          period: int,                  # bars of the high-low range, >= 2
         ) -> tuple:                    # (willr,), in [-100, 0]
    "Williams %R: where the close sits in the `period`-bar high-low range, in [-100, 0]."
    return (talib.WILLR(b["high"], b["low"], b["close"], period),)


# %%
hi, lo = pd.Series(S["high"]).rolling(14).max(), pd.Series(S["low"]).rolling(14).min()
raw_k = 100 * (S["close"] - lo) / (hi - lo)
k, d = stoch(S, None, 14, 3, 3)
test_eq((int(np.isnan(k).sum()), int(np.isnan(d).sum())), (17, 17))      # TA-Lib starts %K together with %D
same(k[17:], raw_k.rolling(3).mean()[17:])
same(d, raw_k.rolling(3).mean().rolling(3).mean())
same(willr(S, None, 14)[0], -100 * (hi - S["close"]) / (hi - lo))
test_eq(int(np.isnan(d).sum()), INDICATORS["stoch"].lookback(fastk=14, slowk=3, slowd=3))


# %%
#| export
@register("mfi", {"period": 14}, ("mfi",), lookback=lambda period: period, minimum={"period": 2})
def mfi(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close, volume
        src: np.ndarray,              # not read: uses high, low, close, volume from `b`
        period: int,                  # bars of money flow summed, >= 2
       ) -> tuple:                    # (mfi,), in [0, 100]
    "Money flow index: RSI-like ratio of up- to total money flow (typical price x volume) over `period` bars."
    return (talib.MFI(b["high"], b["low"], b["close"], b["volume"], period),)


@register("roc", {"period": 10}, ("roc",), lookback=lambda period: period, minimum={"period": 1}, source=True)
def roc(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: ROC reads `src`)
        src: np.ndarray,              # the series the entry's `source` names (default close)
        period: int,                  # bars back the change is measured from, >= 1
       ) -> tuple:                    # (roc,), percent: 5 = +5 %
    "Rate of change in percent: 100 * (x_t / x_{t-period} - 1)."
    return (talib.ROC(src, period),)


# %%
tp = (S["high"] + S["low"] + S["close"]) / 3
flow, rising = tp * S["volume"], np.r_[False, np.diff(tp) > 0]
falling = np.r_[False, np.diff(tp) < 0]
up_flow = pd.Series(np.where(rising, flow, 0.0)).rolling(14).sum()
down_flow = pd.Series(np.where(falling, flow, 0.0)).rolling(14).sum()
same(mfi(S, None, 14)[0][14:], (100 * up_flow / (up_flow + down_flow))[14:])
same(roc(S, S["close"], 10)[0], 100 * (pd.Series(S["close"]).pct_change(10)))


# %% [markdown]
# ## Volatility: ATR, NATR and Bollinger bands
# ATR is Wilder's smoothing of the true range, seeded with the mean of the first `n` true ranges
# (the first true range needs a previous close, so the first ATR is at bar `n`). NATR is ATR as a
# percentage of the close. Bollinger bands are the SMA plus and minus `nbdev` *population* standard
# deviations (TA-Lib's `STDDEV`, ddof = 0) — the "standard-deviation bands".

# %%
#| export
@register("atr", {"period": 14}, ("atr",), lookback=lambda period: period,
          memory=lambda period: decay_bars(1 / period), minimum={"period": 1})
def atr(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close
        src: np.ndarray,              # not read: uses high, low, close from `b`
        period: int,                  # bars of Wilder smoothing, >= 1
       ) -> tuple:                    # (atr,) in price units
    "Average true range, Wilder smoothing."
    return (talib.ATR(b["high"], b["low"], b["close"], period),)


@register("natr", {"period": 14}, ("natr",), lookback=lambda period: period,
          memory=lambda period: decay_bars(1 / period), minimum={"period": 1})
def natr(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close
         src: np.ndarray,              # not read: uses high, low, close from `b`
         period: int,                  # bars of Wilder smoothing, >= 1
        ) -> tuple:                    # (natr,), percent of the close: 2 = 2 %
    "Normalised ATR: 100 * ATR / close."
    return (talib.NATR(b["high"], b["low"], b["close"], period),)


@register("bb", {"period": 20, "nbdev": 2.0}, ("upper", "middle", "lower"), lookback=lambda period, nbdev: period - 1,
          minimum={"period": 2, "nbdev": 0.0}, source=True)
def bb(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: BB reads `src`)
       src: np.ndarray,              # the series the entry's `source` names (default close)
       period: int,                  # bars of the SMA and the standard deviation, >= 2
       nbdev: float,                 # band distance in population standard deviations
      ) -> tuple:                    # (upper, middle, lower) in source units
    "Bollinger bands: SMA(period) +- nbdev population standard deviations."
    return talib.BBANDS(src, period, nbdev, nbdev, 0)


# %%
prev = np.r_[np.nan, B["close"][:-1]]
true_range = np.fmax(B["high"] - B["low"], np.fmax(abs(B["high"] - prev), abs(B["low"] - prev)))
seed = np.r_[true_range[1:15].mean(), true_range[15:]]
atr_ = atr(B, None, 14)[0]
same(atr_[14:], pd.Series(seed).ewm(alpha=1 / 14, adjust=False).mean())
same(natr(B, None, 14)[0], 100 * atr_ / B["close"])
upper, middle, lower = bb(B, B["close"], 20, 2.0)
roll = pd.Series(B["close"]).rolling(20)
same(middle, roll.mean())
same(upper, roll.mean() + 2 * roll.std(ddof=0))
same(lower, roll.mean() - 2 * roll.std(ddof=0))

# %%
sl = slice(-24 * 10, None)
fig, (a1, a2) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True, height_ratios=(2, 1))
a1.plot(btc.index[sl], B["close"][sl], c="k", lw=0.8, label="close")
a1.fill_between(btc.index[sl], lower[sl], upper[sl], alpha=0.2, label="BB(20, 2)")
a1.plot(btc.index[sl], ema(B, B["close"], 20)[0][sl], label="EMA 20"); a1.legend(loc="upper left")
a2.plot(btc.index[sl], rsi(B, B["close"], 14)[0][sl], label="RSI 14"); a2.axhline(70, ls=":"); a2.axhline(30, ls=":")
a2.legend(loc="upper left"); a1.set_title("BTC-USD hourly, last ten days");


# %% [markdown]
# ## Volume and trend strength
# OBV is a **running total** of volume signed by the close's direction, started by TA-Lib at the
# first bar's volume. Its level therefore depends on where the data starts, and no window of recent
# bars reproduces it: it is registered `cumulative`, and only its changes are local (`warmup_bars`
# covers those). KAMA (Kaufman) adapts its smoothing to the efficiency ratio, between the EMA(2)
# and EMA(30) factors; its seed fades at worst at the slow rate $(2/31)^2$, hence a long memory.
# ADX is Wilder's smoothing of the directional index DX, itself built from Wilder-smoothed
# directional movement: two recursions in a row, so two decay spans.

# %%
#| export
@register("obv", {}, ("obv",), lookback=lambda: 0, memory=lambda: 1, source=True, cumulative=True)
def obv(b: Mapping[str, np.ndarray],  # bar arrays by column; reads volume
        src: np.ndarray,              # the series whose rises and falls sign the volume (default close)
       ) -> tuple:                    # (obv,), volume units: a running total from the first bar
    "On-balance volume: running total of volume, added on up-closes and subtracted on down-closes."
    return (talib.OBV(src, b["volume"]),)


@register("kama", {"period": 10}, ("kama",), lookback=lambda period: period,
          memory=lambda period: decay_bars((2 / 31) ** 2), minimum={"period": 2}, source=True)
def kama(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: KAMA reads `src`)
         src: np.ndarray,              # the series the entry's `source` names (default close)
         period: int,                  # bars of the efficiency ratio, >= 2
        ) -> tuple:                    # (kama,) in source units
    "Kaufman adaptive moving average (TA-Lib: efficiency ratio over `period`, fast 2, slow 30)."
    return (talib.KAMA(src, period),)


@register("adx", {"period": 14}, ("adx",), lookback=lambda period: 2 * period - 1,
          memory=lambda period: 2 * decay_bars(1 / period), minimum={"period": 2})
def adx(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close
        src: np.ndarray,              # not read: uses high, low, close from `b`
        period: int,                  # bars of each Wilder smoothing, >= 2
       ) -> tuple:                    # (adx,), in [0, 100]
    "Average directional index (Wilder), trend strength in [0, 100]."
    return (talib.ADX(b["high"], b["low"], b["close"], period),)


# %%
step = np.sign(np.diff(S["close"])) * S["volume"][1:]
same(obv(S, S["close"])[0], S["volume"][0] + np.r_[0.0, np.cumsum(step)])


def kama_reference(x, n):
    out, fast, slow = np.full(len(x), np.nan), 2 / 3, 2 / 31
    level = x[n - 1]
    for t in range(n, len(x)):
        efficiency = abs(x[t] - x[t - n]) / np.abs(np.diff(x[t - n:t + 1])).sum()
        level += (efficiency * (fast - slow) + slow) ** 2 * (x[t] - level)
        out[t] = level
    return out


same(kama(S, S["close"], 10)[0], kama_reference(S["close"], 10))
adx_ = adx(B, None, 14)[0]
test_eq(int(np.isnan(adx_).sum()), 27)
assert 0 <= np.nanmin(adx_) and np.nanmax(adx_) <= 100
test_eq(INDICATORS["kama"].warmup({"period": 10}), 10 + 6625 + 1)

# %% [markdown]
# Every TA-Lib-backed indicator starts exactly at its registered lookback, on both samples:

# %%
for name, ind in INDICATORS.items():
    for bars in (B, S):
        outs = ind.compute(bars, bars["close"], **ind.params)
        test_eq(len(outs), len(ind.outputs))
        test_eq(max(int(np.isnan(o).sum()) for o in outs), ind.lookback(**ind.params))
