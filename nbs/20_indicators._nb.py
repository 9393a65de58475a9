# %% [markdown]
# # Indicator kernels
#
# > Numba kernels for the indicators TA-Lib lacks: rolling VWAP bands, SuperTrend and Fibonacci swing levels (ndarray in, ndarray out).

# %%
#| default_exp indicators._nb

# %% [markdown]
# TA-Lib covers most indicators (`tradingbot.indicators.registry` calls it directly). The three here
# have no TA-Lib function, so they are written as numba kernels in the vectorbt style: plain arrays
# in, one `(outputs, n)` float64 block out (each row contiguous, so it becomes a column without a
# copy), no pandas. Where part of the work is a TA-Lib function (the ATR of SuperTrend, the rolling
# extremes behind swing points) the kernel takes its result as an input and keeps only the state
# machine TA-Lib lacks. Each follows the TA-Lib conventions the rest of the package keeps: NaN during
# the warm-up, a documented *lookback* (the index of the first value), and a value at bar `t` that uses
# bars `<= t` only. Every kernel is checked below against a plain-Python or plain-numpy reference.
#
# Every kernel takes an optional `out` block to fill, and the registry passes one made by `np.empty`:
# numpy asks the operating system for huge pages on big arrays and numba's allocator does not, so on a
# million bars the seven-row Fibonacci block takes twice as long to fill when numba allocates it.

# %%
#| export
from __future__ import annotations

import numpy as np
from numba import njit

# %%
#| hide
import matplotlib.pyplot as plt
import talib
from fastcore.test import test_close, test_eq
from numpy.lib.stride_tricks import sliding_window_view

from tradingbot.data.samples import load_sample

btc, spx = load_sample("btcusd_1h"), load_sample("spx_1d")
h, l, c, v = (btc[k].to_numpy() for k in ("high", "low", "close", "volume"))


def same(a, b, rtol=1e-9):
    "Equal within `rtol` (relative, absolute near 0) and NaN in the same places."
    test_eq(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    test_close(a[ok], b[ok], eps=rtol * max(1.0, float(np.abs(b[ok]).max(initial=0))))


# %% [markdown]
# ## Rolling VWAP bands
# The definition used here: a **rolling n-bar VWAP** of the typical price $tp = (H + L + C) / 3$,
#
# $$\text{vwap}_t = \frac{\sum_{i=t-n+1}^{t} v_i\, tp_i}{\sum v_i}, \qquad
#   \sigma_t^2 = \frac{\sum v_i\, (tp_i - \text{vwap}_t)^2}{\sum v_i},$$
#
# with bands $\text{vwap} \pm k\,\sigma$ (volume-weighted population standard deviation). A rolling
# window, rather than a VWAP anchored at each session, keeps the warm-up fixed whatever the timeframe
# or calendar, so `warmup_bars` can promise `n` bars. Lookback: `n - 1`; a window whose volume sums to
# 0 has no VWAP and gives NaN.
#
# Each window is built without subtracting the bar that leaves it: the series is cut into blocks of `n`
# bars, and the window ending at `t` is a suffix of the previous block joined to a prefix of the current
# one. Each part is summarised by its volume, weighted mean and sum of squared deviations (weighted
# Welford updates), and the two parts are joined with Chan's pairwise formula. The obvious alternative,
# running add-and-subtract sums of $v$, $v\,tp$, $v\,tp^2$, drifts, leaves a tiny non-zero volume after
# a run of zero-volume bars, and cancels catastrophically on flat windows, where the square root turns
# rounding noise of $10^{-16}\,tp^2$ into a spread of $10^{-8}\,tp$. Here every window is accurate to
# rounding, a flat window has a spread of exactly 0 and a zero-volume window a volume of exactly 0.

# %%
#| export
@njit(cache=True)
def _welford(vol, mean, m2, w, x):
    "Add value `x` with weight `w` to a part summarised by (volume, weighted mean, sum of squared deviations)."
    if w <= 0.0:
        return vol, mean, m2
    vol += w
    delta = x - mean
    mean += delta * (w / vol)  # w / vol is exactly 1 for a first value, so one bar has no spread
    return vol, mean, m2 + w * delta * (x - mean)


@njit(cache=True)
def vwap_bands_nb(high: np.ndarray,    # bar highs
                  low: np.ndarray,     # bar lows
                  close: np.ndarray,   # bar closes
                  volume: np.ndarray,  # bar volumes
                  period: int,         # bars in the rolling window, >= 1
                  nbdev: float,        # band width in volume-weighted standard deviations
                  out: np.ndarray | None = None, # (3, n) float64 block to fill; allocated if None
                 ) -> np.ndarray:      # (3, n): vwap, upper, lower; NaN before bar `period - 1`
    "Rolling `period`-bar VWAP of the typical price with volume-weighted standard-deviation bands."
    n = close.shape[0]
    if out is None:
        out = np.empty((3, n))
    out[:, :min(period - 1, n)] = np.nan
    # the previous block from offset j to its end, summarised; j = period is the empty part
    s_vol, s_mean, s_m2 = np.zeros(period + 1), np.zeros(period + 1), np.zeros(period + 1)
    for start in range(0, n, period):
        stop = min(start + period, n)
        vol = mean = m2 = 0.0
        for i in range(start, stop):
            vol, mean, m2 = _welford(vol, mean, m2, volume[i], (high[i] + low[i] + close[i]) / 3.0)
            if i < period - 1:
                continue
            j = i + 1 - start  # where the window starts in the previous block
            total = vol + s_vol[j]
            if total <= 0.0:
                out[0, i] = out[1, i] = out[2, i] = np.nan
                continue
            # Chan's formula joins the two parts; one division, and exact when the suffix is empty
            inv = 1.0 / total
            delta = mean - s_mean[j]
            w_mean = mean - delta * (s_vol[j] * inv)
            w_m2 = s_m2[j] + m2 + delta * delta * s_vol[j] * (vol * inv)
            spread = nbdev * np.sqrt(max(w_m2, 0.0) * inv)
            out[0, i], out[1, i], out[2, i] = w_mean, w_mean + spread, w_mean - spread
        vol = mean = m2 = 0.0
        for i in range(stop - 1, start - 1, -1):
            vol, mean, m2 = _welford(vol, mean, m2, volume[i], (high[i] + low[i] + close[i]) / 3.0)
            s_vol[i - start], s_mean[i - start], s_m2[i - start] = vol, mean, m2
    return out


# %% [markdown]
# The reference is plain numpy: every window cut out with `sliding_window_view`, the weighted mean and
# the weighted variance taken in two passes (no sums of squares), on the real BTC-USD hourly bars,
# whose 28 zero-volume hours exercise the empty-window rule when the window is short.

# %%
def vwap_reference(high, low, close, volume, period, nbdev):
    tp = (high + low + close) / 3
    out = np.full((3, len(tp)), np.nan)
    tpw, vw = sliding_window_view(tp, period), sliding_window_view(volume, period)
    vsum = vw.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (tpw * vw).sum(axis=1) / vsum
        sd = np.sqrt((vw * (tpw - mean[:, None]) ** 2).sum(axis=1) / vsum)
    out[:, period - 1:] = mean, mean + nbdev * sd, mean - nbdev * sd
    return out


for period in (1, 2, 20, 24):
    got = vwap_bands_nb(h, l, c, v, period, 2.0)
    same(got, vwap_reference(h, l, c, v, period, 2.0))
    test_eq(np.isnan(got[0, :period - 1]).all() and not np.isnan(got[0, period - 1]), True)
assert np.isnan(vwap_bands_nb(h, l, c, v, 1, 2.0)[0]).sum() == (v == 0).sum()  # a zero-volume bar alone: no VWAP
test_close(vwap_bands_nb(h, l, c, v, 1, 2.0)[1, 100], (h[100] + l[100] + c[100]) / 3)  # one bar: no spread

# %% [markdown]
# Exactly zero volume stays exactly zero, however large the volumes that left the window before it,
# and a flat window has no spread at all, however high the price:

# %%
spike = np.array([1e12, 1e12, 0, 0, 0, 0, 1.0])
x = np.arange(7.0) + 100
out = vwap_bands_nb(x, x, x, spike, 3, 2.0)
test_eq(np.isnan(out[0]).tolist(), [True, True, False, False, True, True, False])
test_eq(out[:, 6].tolist(), [106.0, 106.0, 106.0])
flat = np.full(50, 19_847.11)
test_eq(vwap_bands_nb(flat, flat, flat, np.random.default_rng(0).uniform(0, 1e4, 50), 7, 2.0)[1, 6:], flat[6:])

# %%
vb = vwap_bands_nb(h, l, c, v, 24, 2.0)
sl = slice(-24 * 14, None)
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(btc.index[sl], c[sl], lw=0.8, color="k", label="close")
ax.plot(btc.index[sl], vb[0, sl], label="24h rolling VWAP")
ax.fill_between(btc.index[sl], vb[2, sl], vb[1, sl], alpha=0.2, label="±2 volume-weighted σ")
ax.set_title("BTC-USD hourly: rolling VWAP bands"); ax.legend(loc="upper left");


# %% [markdown]
# ## SuperTrend
# SuperTrend follows the TradingView definition. With $hl2 = (H + L) / 2$ and the Wilder ATR (taken
# from TA-Lib, so the kernel receives it), the basic bands are $hl2 \pm m \cdot ATR$. The final bands
# ratchet: the upper band only falls, unless the previous close broke above it (then it resets to the
# basic band), and the lower band only rises, unless the previous close broke below it. The trend turns
# up when a close crosses above the final upper band and down when a close crosses below the final
# lower band; the line is the lower band in an up-trend and the upper band in a down-trend.
#
# Conventions: `direction` is `+1` up / `-1` down (TradingView's sign is the opposite); the first bar
# with an ATR starts in a down-trend, as TradingView does; lookback = the ATR's lookback (the first
# finite ATR), so with TA-Lib's ATR(`p`) the first value is at bar `p`.

# %%
#| export
@njit(cache=True)
def supertrend_nb(high: np.ndarray,   # bar highs
                  low: np.ndarray,    # bar lows
                  close: np.ndarray,  # bar closes
                  atr: np.ndarray,    # average true range, NaN during its warm-up
                  mult: float,        # band distance in ATRs
                  out: np.ndarray | None = None, # (2, n) float64 block to fill; allocated if None
                 ) -> np.ndarray:     # (2, n): line, direction (+1 up, -1 down); NaN until the first ATR
    "SuperTrend line and direction from ratcheting ATR bands around the bar midpoint."
    n = close.shape[0]
    if out is None:
        out = np.empty((2, n))
    line, direction = out[0], out[1]
    first = 0
    while first < n and np.isnan(atr[first]):
        line[first] = direction[first] = np.nan
        first += 1
    if first == n:
        return out
    mid = (high[first] + low[first]) / 2.0
    upper, lower, up = mid + mult * atr[first], mid - mult * atr[first], False
    line[first], direction[first] = upper, -1.0
    # selects, not branches: on noisy prices whether a band resets is unpredictable
    for i in range(first + 1, n):
        mid = (high[i] + low[i]) / 2.0
        basic_upper, basic_lower = mid + mult * atr[i], mid - mult * atr[i]
        upper = basic_upper if (basic_upper < upper) | (close[i - 1] > upper) else upper
        lower = basic_lower if (basic_lower > lower) | (close[i - 1] < lower) else lower
        up = close[i] >= lower if up else close[i] > upper
        line[i] = lower if up else upper
        direction[i] = 1.0 if up else -1.0
    return out


# %% [markdown]
# The reference is a line-by-line transcription of TradingView's `pine_supertrend` (its ±1 sign flipped),
# run in plain Python over the BTC-USD bars. One liberty: TradingView tells the previous trend by
# `prevSuperTrend == prevUpperBand`, which is ambiguous when the bands touch (ATR = 0 on a flat bar,
# which BTC-USD has), so the reference keeps the previous direction instead, as the kernel does.

# %%
def supertrend_reference(high, low, close, atr, mult):
    line, direction = np.full(len(close), np.nan), np.full(len(close), np.nan)
    prev_upper = prev_lower = prev_dir = np.nan
    for i in range(len(close)):
        if np.isnan(atr[i]):
            continue
        upper = (high[i] + low[i]) / 2 + mult * atr[i]
        lower = (high[i] + low[i]) / 2 - mult * atr[i]
        if not np.isnan(prev_dir):
            lower = lower if lower > prev_lower or close[i - 1] < prev_lower else prev_lower
            upper = upper if upper < prev_upper or close[i - 1] > prev_upper else prev_upper
        if np.isnan(prev_dir):
            tv_dir = 1
        elif prev_dir == 1:
            tv_dir = -1 if close[i] > upper else 1
        else:
            tv_dir = 1 if close[i] < lower else -1
        line[i] = lower if tv_dir == -1 else upper
        direction[i] = -tv_dir
        prev_upper, prev_lower, prev_dir = upper, lower, tv_dir
    return np.stack([line, direction])


for period, mult in ((10, 3.0), (7, 2.0), (1, 1.0)):
    atr = talib.ATR(h, l, c, period)
    got = supertrend_nb(h, l, c, atr, mult)
    same(got, supertrend_reference(h, l, c, atr, mult))
    test_eq(int(np.isnan(got[0]).sum()), period)  # lookback = ATR's
test_eq(set(np.unique(got[1][~np.isnan(got[1])])), {-1.0, 1.0})
test_eq(np.isnan(supertrend_nb(h[:5], l[:5], c[:5], talib.ATR(h[:5], l[:5], c[:5], 10), 3.0)).all(), True)

# %% [markdown]
# In an up-trend the line sits below every close, in a down-trend above it (a close beyond the line
# turns the trend on that very bar):

# %%
st = supertrend_nb(h, l, c, talib.ATR(h, l, c, 10), 3.0)
ok = ~np.isnan(st[1])
test_eq(bool((c[ok & (st[1] == 1)] >= st[0][ok & (st[1] == 1)]).all()), True)
test_eq(bool((c[ok & (st[1] == -1)] <= st[0][ok & (st[1] == -1)]).all()), True)
sl = slice(-24 * 30, None)
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(btc.index[sl], c[sl], lw=0.8, color="k", label="close")
for d, colour in ((1, "tab:green"), (-1, "tab:red")):
    ax.plot(btc.index[sl], np.where(st[1, sl] == d, st[0, sl], np.nan), color=colour, label=f"SuperTrend {d:+d}")
ax.set_title("BTC-USD hourly: SuperTrend(10, 3)"); ax.legend(loc="upper left");


# %% [markdown]
# ## Fibonacci swing levels
# A **swing high** at bar `s` is the leftmost maximum of `high[s-k : s+k+1]`: strictly above the `k`
# highs before it and at least the `k` after it; a swing low mirrors that on the lows. It cannot be
# known before the `k` bars after it have closed, so it is **confirmed at bar `s + k`** and used only
# from there on. At each bar the kernel takes the latest confirmed swing high `H` and swing low `L`; a
# swing older than `period` bars (`s <= t - period`) has expired, and without both there are no levels.
# The later of the two sets the leg: after a swing high (a leg up from `L` to `H`) the retracement
# level `r` is `H - r (H - L)`; after a swing low (a leg down) it is `L + r (H - L)`. A bar that is both
# (an outside bar) counts as a swing high last.
#
# The swing test needs the highest high of the `k` bars before `s` and of the `k` bars after it; both
# are values of one rolling maximum over `k` bars (at `s - 1` and at `s + k`), which is TA-Lib's
# `MAX(high, k)` (and `MIN(low, k)` for the lows), so the kernel takes those two arrays and makes two
# comparisons per bar. Outputs: `H`, `L`, then one row per ratio. Lookback: at least `2k` (the first
# swing can be confirmed at bar `2k`), beyond that data-dependent: levels start once both swings exist.
# Everything about bar `t` lies in bars `t - period - k + 1 .. t`, so `warmup_bars` gives `period + k`.

# %%
#| export
@njit(cache=True)
def fib_levels_nb(high: np.ndarray,     # bar highs
                  low: np.ndarray,      # bar lows
                  highest: np.ndarray,  # highest high of the k bars ending at each bar (TA-Lib MAX(high, k))
                  lowest: np.ndarray,   # lowest low of the k bars ending at each bar (TA-Lib MIN(low, k))
                  k: int,               # bars on each side of a swing extreme; it is confirmed k bars after it
                  period: int,          # swings older than this many bars expire
                  ratios: np.ndarray,   # retracement ratios, e.g. 0.236 0.382 0.5 0.618 0.786
                  out: np.ndarray | None = None, # (2 + len(ratios), n) float64 block to fill; allocated if None
                 ) -> np.ndarray:       # swing high, swing low, one level per ratio; NaN until both swings
    "Fibonacci retracement levels of the leg between the latest confirmed swing high and swing low."
    n, m = high.shape[0], ratios.shape[0]
    if out is None:
        out = np.empty((2 + m, n))
    hi_at, lo_at, hi, lo = -1, -1, np.nan, np.nan
    for t in range(n):
        s = t - k
        if s >= k:  # selects, not branches: whether a bar is a swing is a coin toss to the CPU
            is_high = (high[s] > highest[s - 1]) & (high[s] >= highest[t])
            is_low = (low[s] < lowest[s - 1]) & (low[s] <= lowest[t])
            hi_at, hi = (s, high[s]) if is_high else (hi_at, hi)
            lo_at, lo = (s, low[s]) if is_low else (lo_at, lo)
        live = (hi_at >= 0) & (lo_at >= 0) & (hi_at > t - period) & (lo_at > t - period)
        base, step = (hi, lo - hi) if hi_at >= lo_at else (lo, hi - lo)
        out[0, t] = hi if live else np.nan
        out[1, t] = lo if live else np.nan
        for r in range(m):
            out[2 + r, t] = base + ratios[r] * step if live else np.nan
    return out


# %% [markdown]
# The reference finds swings with plain Python `max`/`min` over slices, then at every bar rescans the
# list of swings for the latest confirmed, unexpired ones (quadratic, so it runs on the last 3,000
# BTC-USD hours and the last 2,000 S&P 500 days):

# %%
RATIOS = np.array([0.236, 0.382, 0.5, 0.618, 0.786])


def fib_nb(high, low, k, period, ratios):
    "The kernel fed with TA-Lib's rolling extremes, as the registry calls it."
    return fib_levels_nb(high, low, talib.MAX(high, k), talib.MIN(low, k), k, period, ratios)


def fib_reference(high, low, k, period, ratios):
    n = len(high)
    out = np.full((2 + len(ratios), n), np.nan)
    highs = [s for s in range(k, n - k) if high[s] > max(high[s - k:s]) and high[s] >= max(high[s + 1:s + k + 1])]
    lows = [s for s in range(k, n - k) if low[s] < min(low[s - k:s]) and low[s] <= min(low[s + 1:s + k + 1])]
    for t in range(n):
        hs = [s for s in highs if t - period < s <= t - k]  # confirmed and not expired
        ls = [s for s in lows if t - period < s <= t - k]
        if not hs or not ls:
            continue
        H, L = high[hs[-1]], low[ls[-1]]
        out[:2, t] = H, L
        out[2:, t] = H - ratios * (H - L) if hs[-1] >= ls[-1] else L + ratios * (H - L)
    return out


for frame, rows in ((btc, slice(-3000, None)), (spx, slice(-2000, None))):
    hi_, lo_ = frame.high.to_numpy()[rows], frame.low.to_numpy()[rows]
    for k, period in ((5, 100), (2, 20), (10, 60)):
        same(fib_nb(hi_, lo_, k, period, RATIOS), fib_reference(hi_, lo_, k, period, RATIOS))

# %% [markdown]
# Hand-made cases: a swing is confirmed exactly `k` bars after it, ties go to the leftmost extreme,
# the later swing sets the direction, and swings expire after `period` bars.

# %%
up = np.array([1.0, 2, 5, 3, 2, 1, 2, 3, 4, 5, 6])   # swing high 5 at bar 2, swing low 1 at bar 5 (k = 2)
fib = fib_nb(up, up, 2, 100, np.array([0.5, 0.618]))
test_eq(np.isnan(fib[0, :7]).all() and not np.isnan(fib[0, 7]), True)   # the low at 5 is confirmed at 7
test_eq(fib[:, 7].tolist(), [5.0, 1.0, 3.0, 1 + 0.618 * 4])              # leg down: levels measured up from L
test_eq(np.isnan(fib_nb(up, up, 2, 5, np.array([0.5]))[0]).all(), True)  # the high has expired by bar 7
ties = np.array([1.0, 1, 3, 3, 1, 1, 0.5, 1, 1])   # equal highs at 2 and 3: bar 2 is the swing, low 0.5 at 6
test_eq(fib_nb(ties, ties, 2, 7, np.array([0.5]))[:, -1].tolist(), [3.0, 0.5, 1.75])
test_eq(np.isnan(fib_nb(ties, ties, 2, 6, np.array([0.5]))[:, -1]).all(), True)  # so it expires a bar sooner
test_eq(np.isnan(fib_nb(up[:4], up[:4], 2, 100, RATIOS)).all(), True)
test_eq(np.isnan(fib_nb(up, up, 2, 100, RATIOS)[:, :7]).all(), True)

# %%
lv = fib_nb(spx.high.to_numpy(), spx.low.to_numpy(), 5, 100, RATIOS)
sl = slice(-500, None)
fig, ax = plt.subplots(figsize=(9, 3))
ax.plot(spx.index[sl], spx.close.to_numpy()[sl], lw=0.8, color="k", label="close")
for row, name in zip(lv[2:], ("23.6%", "38.2%", "50%", "61.8%", "78.6%")):
    ax.plot(spx.index[sl], row[sl], lw=0.7, label=name)
ax.set_title("S&P 500 daily: Fibonacci levels of the latest confirmed swing leg (k=5)"); ax.legend(fontsize=7, ncol=2);
