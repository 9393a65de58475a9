# %% [markdown]
# # Composite indicators
#
# > Indicators built from TA-Lib pieces (HMA, Donchian, Keltner, Bollinger %B, Ichimoku) or on the numba kernels (SuperTrend, rolling VWAP bands, Fibonacci swing levels), added to the registry.

# %%
#| default_exp indicators.composite

# %% [markdown]
# TA-Lib has no function for these, but most are formulas over functions it does have: the Hull
# moving average is three WMAs, a Donchian channel is `MAX` and `MIN`, Ichimoku's lines are
# `MIDPRICE`s. Those are composed here from TA-Lib calls, so they inherit its conventions and speed.
# The three that need a state machine TA-Lib lacks call the kernels of `tradingbot.indicators._nb`.
# Each is registered like the TA-Lib-backed ones, with its lookback and memory.

# %%
#| export
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import talib

from tradingbot.indicators._nb import fib_levels_nb, supertrend_nb, vwap_bands_nb
from tradingbot.indicators.registry import decay_bars, register

# %%
#| hide
import matplotlib.pyplot as plt
import pandas as pd
from fastcore.test import test_close, test_eq
from numpy.lib.stride_tricks import sliding_window_view

from tradingbot.data.samples import load_sample
from tradingbot.data.synthetic import synthetic_bars
from tradingbot.indicators.registry import INDICATORS

btc, spx = load_sample("btcusd_1h"), load_sample("spx_1d")
B = {k: btc[k].to_numpy() for k in btc.columns}
S = {k: spx[k].to_numpy() for k in spx.columns}


def same(a, b, rtol=1e-9):
    "Equal within `rtol` (relative to the largest value, absolute near 0) and NaN in the same places."
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    test_eq(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    test_close(a[ok], b[ok], eps=rtol * max(1.0, float(np.abs(b[ok]).max(initial=0))))


def starts_at(ind_name, outs, **params):
    "Every output starts no later than the registered lookback, and the last one exactly there."
    test_eq(max(int(np.isnan(o).sum()) for o in outs), INDICATORS[ind_name].lookback(**params))


# %% [markdown]
# ## Hull moving average
# $HMA(n) = WMA_{\lfloor\sqrt n\rfloor}\big(2\,WMA_{\lfloor n/2 \rfloor}(x) - WMA_n(x)\big)$: the
# doubled fast WMA cancels most of the slow one's lag. Its windows are finite (no seed to forget), so
# lookback `n - 1 + isqrt(n) - 1` and memory 0.

# %%
#| export
@register("hma", {"period": 9}, ("hma",), lookback=lambda period: period - 1 + math.isqrt(period) - 1,
          minimum={"period": 2}, source=True)
def hma(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: HMA reads `src`)
        src: np.ndarray,              # the series the entry's `source` names (default close)
        period: int,                  # bars of the slow WMA; the fast has period // 2, the final isqrt(period)
       ) -> tuple:                    # (hma,) in source units
    "Hull moving average."
    fast = talib.WMA(src, period // 2)
    fast *= 2.0  # in place: on a million bars every temporary array costs as much as a TA-Lib call
    fast -= talib.WMA(src, period)
    return (talib.WMA(fast, math.isqrt(period)),)


# %%
def wma_reference(x, n):
    "Plain WMA: weights 1..n, newest heaviest."
    w = np.arange(1, n + 1.0)
    return pd.Series(x).rolling(n).apply(lambda v: v @ w / w.sum(), raw=True).to_numpy()


x = S["close"]
hma_ = hma(S, x, 9)[0]
same(hma_, wma_reference(2 * wma_reference(x, 4) - wma_reference(x, 9), 3))
starts_at("hma", (hma_,), period=9)

# %% [markdown]
# The point of the construction: on a straight line HMA(9) has no lag at all, where SMA(9) trails by 4 bars.

# %%
ramp = np.arange(100.0)
same(hma({}, ramp, 9)[0][10:], ramp[10:])
same(talib.SMA(ramp, 9)[9:], ramp[9:] - 4)


# %% [markdown]
# ## Channels: Donchian and Keltner
# The Donchian channel is the highest high and lowest low of the last `n` bars **including the current
# one** (TA-Lib's `MAX`/`MIN`), and its midpoint (`MIDPRICE`); a breakout rule compares a close with
# the previous bar's channel. The Keltner channel is an EMA of the source (typical: the close) plus and
# minus `mult` ATRs; both parts are recursive, so its memory is the longer of the two.

# %%
#| export
@register("donchian", {"period": 20}, ("upper", "middle", "lower"), lookback=lambda period: period - 1,
          minimum={"period": 2})
def donchian(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low
             src: np.ndarray,              # not read: uses high, low from `b`
             period: int,                  # bars in the channel, the current one included, >= 2
            ) -> tuple:                    # (upper, middle, lower) in price units
    "Donchian channel: highest high, midpoint and lowest low of the last `period` bars."
    high, low = b["high"], b["low"]
    return talib.MAX(high, period), talib.MIDPRICE(high, low, period), talib.MIN(low, period)


@register("keltner", {"period": 20, "atr_period": 10, "mult": 2.0}, ("upper", "middle", "lower"),
          lookback=lambda period, atr_period, mult: max(period - 1, atr_period),
          memory=lambda period, atr_period, mult: max(decay_bars(2 / (period + 1)), decay_bars(1 / atr_period)),
          minimum={"period": 1, "atr_period": 1, "mult": 0.0}, source=True)
def keltner(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close (for the ATR)
            src: np.ndarray,              # the series of the EMA (default close)
            period: int,                  # bars of the EMA
            atr_period: int,              # bars of the ATR (Wilder)
            mult: float,                  # band distance in ATRs
           ) -> tuple:                    # (upper, middle, lower) in source units
    "Keltner channel: EMA(period) of the source +- mult x ATR(atr_period)."
    middle = talib.EMA(src, period)
    width = talib.ATR(b["high"], b["low"], b["close"], atr_period)
    width *= mult
    return middle + width, middle, middle - width


# %%
up, mid, down = donchian(B, None, 20)
same(up, pd.Series(B["high"]).rolling(20).max())
same(down, pd.Series(B["low"]).rolling(20).min())
same(mid, (up + down) / 2)
starts_at("donchian", (up, mid, down), period=20)
ku, km, kl = keltner(B, B["close"], 20, 10, 2.0)
same(km, talib.EMA(B["close"], 20))
same((ku - km)[19:], 2 * talib.ATR(B["high"], B["low"], B["close"], 10)[19:])
same(km - kl, ku - km)
starts_at("keltner", (ku, km, kl), period=20, atr_period=10, mult=2.0)

# %%
sl = slice(-24 * 12, None)
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(btc.index[sl], B["close"][sl], c="k", lw=0.8, label="close")
ax.fill_between(btc.index[sl], down[sl], up[sl], alpha=0.15, label="Donchian 20")
ax.plot(btc.index[sl], ku[sl], c="tab:orange", lw=0.8, label="Keltner 20/10/2")
ax.plot(btc.index[sl], kl[sl], c="tab:orange", lw=0.8)
ax.legend(loc="upper left"); ax.set_title("BTC-USD hourly: Donchian and Keltner channels");


# %% [markdown]
# ## Bollinger %B
# %B places the source inside the Bollinger bands: 0 on the lower band, 1 on the upper, beyond them
# outside. A window with no spread (every value equal: the one-minute E-mini sample has 118 runs of
# five equal closes) has no %B: NaN, not a division by zero.

# %%
#| export
@register("pctb", {"period": 20, "nbdev": 2.0}, ("pctb",), lookback=lambda period, nbdev: period - 1,
          minimum={"period": 2, "nbdev": 0.0}, source=True)
def pctb(b: Mapping[str, np.ndarray],  # bar arrays by column (not read: %B reads `src`)
         src: np.ndarray,              # the series the entry's `source` names (default close)
         period: int,                  # bars of the Bollinger SMA and standard deviation, >= 2
         nbdev: float,                 # band distance in population standard deviations
        ) -> tuple:                    # (pctb,): 0 on the lower band, 1 on the upper; NaN on a flat window
    "Bollinger %B: (source - lower band) / (upper band - lower band)."
    upper, _, lower = talib.BBANDS(src, period, nbdev, nbdev, 0)
    upper -= lower
    flat = upper == 0.0
    upper[flat] = np.nan
    return ((src - lower) / upper,)


# %%
u, m_, lo_ = talib.BBANDS(S["close"], 20, 2.0, 2.0, 0)
same(pctb(S, S["close"], 20, 2.0)[0], (S["close"] - lo_) / (u - lo_))
es = load_sample("es_1m").close.to_numpy()
flat_windows = np.r_[np.full(4, False), np.ptp(sliding_window_view(es, 5), axis=1) == 0]   # 5 equal closes in a row
test_eq(int(flat_windows.sum()), 118)
test_eq(np.isnan(pctb({}, es, 5, 2.0)[0]), np.r_[np.full(4, True), flat_windows[4:]])


# %% [markdown]
# ## Ichimoku
# Tenkan-sen and kijun-sen are midpoints of the high-low range over 9 and 26 bars; senkou span A is
# their average and senkou span B the 52-bar midpoint. Charts draw both spans 26 bars *ahead*, but a
# value is only known at the bar it was computed on, so here `span_a`/`span_b` sit at that bar (no
# shift). The cloud under the current bar, as a chart shows it, is the spans computed `kijun` bars ago:
# `cloud_a`/`cloud_b` are those past values (TradingView draws them `kijun - 1` bars ahead, one bar
# less; here the displacement is the kijun period, the textbook rule). The chikou span (the close drawn
# 26 bars back) would put a future close on a past bar, so it is not offered.

# %%
#| export
def _lagged(x: np.ndarray, bars: int) -> np.ndarray:
    "`x` delayed by `bars`: the value at t is x[t - bars] (a past value, never a future one)."
    out = np.empty_like(x)
    out[:bars] = np.nan
    out[bars:] = x[:-bars]
    return out


@register("ichimoku", {"tenkan": 9, "kijun": 26, "senkou": 52},
          ("tenkan", "kijun", "span_a", "span_b", "cloud_a", "cloud_b"),
          lookback=lambda tenkan, kijun, senkou: max(tenkan, kijun, senkou) - 1 + kijun,
          minimum={"tenkan": 2, "kijun": 2, "senkou": 2})
def ichimoku(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low
             src: np.ndarray,              # not read: uses high, low from `b`
             tenkan: int,                  # bars of the conversion line's high-low midpoint
             kijun: int,                   # bars of the base line's midpoint; also the cloud's delay in bars
             senkou: int,                  # bars of span B's midpoint
            ) -> tuple:                    # (tenkan, kijun, span_a, span_b, cloud_a, cloud_b) in price units
    "Ichimoku lines at the bar they are known, and the cloud under the current bar (spans from `kijun` bars ago)."
    high, low = b["high"], b["low"]
    conversion, base = talib.MIDPRICE(high, low, tenkan), talib.MIDPRICE(high, low, kijun)
    span_a, span_b = (conversion + base) / 2, talib.MIDPRICE(high, low, senkou)
    return conversion, base, span_a, span_b, _lagged(span_a, kijun), _lagged(span_b, kijun)


# %%
mid_range = lambda n: ((pd.Series(S["high"]).rolling(n).max() + pd.Series(S["low"]).rolling(n).min()) / 2).to_numpy()
lines = ichimoku(S, None, 9, 26, 52)
same(lines[0], mid_range(9))
same(lines[1], mid_range(26))
same(lines[2], (mid_range(9) + mid_range(26)) / 2)
same(lines[3], mid_range(52))
same(lines[4][26:], lines[2][:-26])
same(lines[5][26:], lines[3][:-26])
test_eq([int(np.isnan(o).sum()) for o in lines], [8, 25, 25, 51, 51, 77])
starts_at("ichimoku", lines, tenkan=9, kijun=26, senkou=52)

# %%
sl = slice(-250, None)
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(spx.index[sl], S["close"][sl], c="k", lw=0.8, label="close")
ax.plot(spx.index[sl], lines[0][sl], lw=0.8, label="tenkan 9")
ax.plot(spx.index[sl], lines[1][sl], lw=0.8, label="kijun 26")
ax.fill_between(spx.index[sl], lines[4][sl], lines[5][sl], where=lines[4][sl] >= lines[5][sl], color="g", alpha=0.2)
ax.fill_between(spx.index[sl], lines[4][sl], lines[5][sl], where=lines[4][sl] < lines[5][sl], color="r", alpha=0.2)
ax.legend(loc="lower left", fontsize=8)
ax.set_title("S&P 500 2018: Ichimoku; the cloud under each bar is from data 26 days old");

# %% [markdown]
# ## On the kernels: SuperTrend, rolling VWAP bands, Fibonacci swing levels
# The definitions and their references are in `tradingbot.indicators._nb`. Here they get their
# TA-Lib inputs (the ATR, the rolling extremes) and an output block from `np.empty`.
#
# SuperTrend's ATR is recursive, and so is its band ratchet: a final band keeps its value until the
# close crosses it, so a window that starts inside a trend can hold a different band until the next
# cross. Unlike a seed, a band can in principle survive any number of bars, so its margin is measured,
# not derived. Its scale is a diffusion time: a price that moves about one ATR a bar needs on the order
# of $m^2$ bars to travel the $m$ ATRs to a band. On every bundled sample and 100,000 synthetic bars,
# for periods 1–20 and multipliers 0.5–8, computations started at random bars agreed with the full
# history for good at most $16 + 6m^2$ bars after the ATR's own seed had faded; the registered memory
# is the ATR's decay span plus `SUPERTREND_SETTLE` $\cdot (1 + m^2)$ bars, with `SUPERTREND_SETTLE = 20`
# (474 bars of warm-up for SuperTrend(10, 3)). The last cell re-measures a few cases.

# %%
#| export
SUPERTREND_SETTLE = 20  # bars per (1 + mult^2) for the band state to re-sync after the ATR converged (measured)


@register("supertrend", {"period": 10, "mult": 3.0}, ("supertrend", "dir"), lookback=lambda period, mult: period,
          memory=lambda period, mult: decay_bars(1 / period) + math.ceil(SUPERTREND_SETTLE * (1 + mult * mult)),
          minimum={"period": 1, "mult": 0.0})
def supertrend(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close
               src: np.ndarray,              # not read: uses high, low, close from `b`
               period: int,                  # bars of the ATR (Wilder)
               mult: float,                  # band distance in ATRs
              ) -> tuple:                    # (supertrend, dir): line in price units, dir +1 up / -1 down
    "SuperTrend line and direction (+1 up, -1 down) from bands mult x ATR(period) around the bar midpoint."
    high, low, close = b["high"], b["low"], b["close"]
    atr = talib.ATR(high, low, close, period)
    return tuple(supertrend_nb(high, low, close, atr, float(mult), np.empty((2, len(close)))))


@register("vwap", {"period": 20, "nbdev": 2.0}, ("vwap", "upper", "lower"), lookback=lambda period, nbdev: period - 1,
          minimum={"period": 1, "nbdev": 0.0})
def vwap(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low, close, volume
         src: np.ndarray,              # not read: uses high, low, close, volume from `b`
         period: int,                  # bars in the rolling window, >= 1
         nbdev: float,                 # band distance in volume-weighted standard deviations
        ) -> tuple:                    # (vwap, upper, lower) in price units
    "Rolling `period`-bar VWAP of the typical price, +- nbdev volume-weighted standard deviations."
    close = b["close"]
    return tuple(vwap_bands_nb(b["high"], b["low"], close, b["volume"], period, float(nbdev),
                               np.empty((3, len(close)))))


FIB_RATIOS = np.array([0.236, 0.382, 0.5, 0.618, 0.786])


def _extreme(x: np.ndarray, k: int, fn) -> np.ndarray:
    "Rolling max/min over `k` bars; over one bar that is the series itself (TA-Lib needs k >= 2)."
    return x if k == 1 else fn(x, k)


@register("fib", {"period": 100, "k": 5}, ("high", "low", "236", "382", "500", "618", "786"),
          lookback=lambda period, k: 2 * k, memory=lambda period, k: period - k - 1, minimum={"period": 2, "k": 1},
          check=lambda period, k: None if period > k else "period must exceed k (a swing is confirmed k bars after it)")
def fib(b: Mapping[str, np.ndarray],  # bar arrays by column; reads high, low
        src: np.ndarray,              # not read: uses high, low from `b`
        period: int,                  # bars after which a swing expires, > k
        k: int,                       # bars each side of a swing extreme; it is confirmed k bars after it
       ) -> tuple:                    # (high, low, 236, 382, 500, 618, 786): swings and levels in price units
    "Latest confirmed swing high and low (k bars each side, expiring after `period` bars) and the levels between."
    high, low = b["high"], b["low"]
    return tuple(fib_levels_nb(high, low, _extreme(high, k, talib.MAX), _extreme(low, k, talib.MIN), k, period,
                               FIB_RATIOS, np.empty((2 + len(FIB_RATIOS), len(high)))))


# %%
line, direction = supertrend(B, None, 10, 3.0)
atr10 = talib.ATR(B["high"], B["low"], B["close"], 10)
same(np.stack([line, direction]), supertrend_nb(B["high"], B["low"], B["close"], atr10, 3.0))
starts_at("supertrend", (line, direction), period=10, mult=3.0)
bands = vwap(B, None, 24, 2.0)
same(np.stack(bands), vwap_bands_nb(B["high"], B["low"], B["close"], B["volume"], 24, 2.0))
starts_at("vwap", bands, period=24, nbdev=2.0)
levels = fib(S, None, 100, 5)
test_eq(len(levels), 7)
assert int(np.isnan(levels[0]).sum()) >= INDICATORS["fib"].lookback(period=100, k=5)
same(fib(S, None, 100, 1)[0], fib_levels_nb(S["high"], S["low"], S["high"], S["low"], 1, 100, FIB_RATIOS)[0])
test_eq(INDICATORS["fib"].warmup({"period": 100, "k": 5}), 105)
test_eq(INDICATORS["fib"].check(period=5, k=5), "period must exceed k (a swing is confirmed k bars after it)")


# %% [markdown]
# How long SuperTrend takes to agree with its full-history self: start the computation at random bars
# of the samples and of a long synthetic series, and count the bars until the late start matches the
# full history (to 1e-9) for good. The worst case stays inside the registered memory, for the
# customary parameters and for narrow, short and wide bands.

# %%
def settle_bars(bars, period, mult, starts=30, seed=0):
    "Worst number of bars, over random start points, until a late-started SuperTrend agrees for good."
    full = np.stack(supertrend(bars, None, period, mult))
    n, worst = len(bars["close"]), 0
    for s in np.random.default_rng(seed).integers(0, n - 3000, starts):  # 3000: room to settle
        part = np.stack(supertrend({k: v[s:] for k, v in bars.items()}, None, period, mult))
        differs = ~np.isclose(part, full[:, s:], rtol=1e-9, atol=0).all(axis=0)
        worst = max(worst, int(np.flatnonzero(differs).max(initial=-1)) + 1)
    return worst


syn = synthetic_bars(50_000, "1h", seed=1)
datasets = (B, S, {k: syn[k].to_numpy() for k in syn.columns})
for period, mult in ((10, 3.0), (1, 1.0), (2, 8.0), (10, 8.0)):
    worst = max(settle_bars(bars, period, mult) for bars in datasets)
    memory = INDICATORS["supertrend"].memory(period=period, mult=mult)
    print(f"SuperTrend({period}, {mult:g}): worst {worst} bars to agree, memory {memory}")
    assert worst < memory
