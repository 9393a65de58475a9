# %% [markdown]
# # Labeling
#
# > Triple-barrier labels, meta-labels and regime tags (trending / ranging / volatile), each computed from data a trader would have had.

# %%
#| default_exp labeling

# %% [markdown]
# A supervised model needs a target for every decision it could take. Fixed-horizon returns ignore
# the path (a trade stopped out at −5 % counts as a win if the price recovers by the horizon), so we
# follow López de Prado (*Advances in Financial Machine Learning*, AFML, ch. 3): a label is the first
# of three barriers the price touches after the decision — take-profit, stop-loss or a time limit.
#
# **Timing** (DESIGN §5: a bar is known at its close). An event at bar $t$ is decided at $t$'s close
# and entered at `close[t]`. The path examined is bars $t+1 \dots t+h$ ($h$ = `vertical_bars`). The
# barrier widths come from `target[t]`, a volatility known at $t$'s close. So a label never sees a
# price after its exit time `t1`, and the features at $t$ never see anything after $t$.
#
# Sample weights for these labels (concurrency, uniqueness, return attribution; AFML ch. 4) are in
# `tradingbot.sample_weights` (notebook `31_sample_weights`).

# %%
#| export
from __future__ import annotations

import numpy as np
import pandas as pd
import talib
from numba import njit

from tradingbot.data.timeframes import check_time_index

# %%
#| hide
import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail

from tradingbot.data.samples import load_sample

btc, spx = load_sample("btcusd_1h"), load_sample("spx_1d")


# %% [markdown]
# ## The volatility target
# Barriers are set in units of recent volatility, so one rule means the same on a quiet and a wild
# market. `ewm_volatility` is the exponentially weighted standard deviation (pandas' unbiased
# weighted estimator, `adjust=True`) of simple close-to-close returns up to **and including** bar $t$
# — all known at $t$'s close, nothing later. AFML uses the same estimator on daily returns (snippet 3.1).

# %%
#| export
def _close_of(prices: pd.Series | pd.DataFrame) -> pd.Series:
    "The close Series of `prices` (a close Series or a bar frame), after checking its index and values."
    if isinstance(prices, pd.DataFrame) and "close" not in prices.columns:
        raise ValueError(f"bars have no 'close' column (columns: {list(prices.columns)})")
    close = prices["close"] if isinstance(prices, pd.DataFrame) else prices
    if not isinstance(close, pd.Series):
        raise TypeError(f"prices must be a close Series or a bar DataFrame, got {type(prices).__name__}")
    check_time_index(close, "close")
    values = close.to_numpy(dtype="float64")
    if not (np.isfinite(values) & (values > 0)).all():
        bad = close.index[~(np.isfinite(values) & (values > 0))][0]
        raise ValueError(f"close must be finite and > 0; first bad bar at {bad}; clean with validate_bars")
    return close.astype("float64")


def ewm_volatility(close: pd.Series | pd.DataFrame, # closing prices (or bars), UTC bar index
                   span: int = 100,                  # EWM span in bars: alpha = 2 / (span + 1)
                   min_periods: int = 20,            # fewer returns than this give NaN (too few to trust)
                  ) -> pd.Series:                    # EWM std of simple returns up to and including each bar
    "Exponentially weighted std of close-to-close returns, from each bar and the bars before it only."
    if span < 1 or min_periods < 2:
        raise ValueError(f"need span >= 1 and min_periods >= 2, got span={span}, min_periods={min_periods}")
    close = _close_of(close)
    returns = close / close.shift(1) - 1.0
    return returns.ewm(span=span, min_periods=min_periods).std().rename("target")


# %% [markdown]
# On the S&P 500 the target is the familiar daily volatility: about 1 % in calm years, 3–6 % in the
# autumn of 2008. Under its definition: at bar $t$ with returns $r_t, r_{t-1}, \dots$ and weights
# $w_k = (1-\alpha)^k$, it is $\sqrt{\frac{\sum w_k (r_{t-k}-\bar r)^2}{\sum w_k} \cdot
# \frac{(\sum w_k)^2}{(\sum w_k)^2 - \sum w_k^2}}$ with $\bar r$ the weighted mean.

# %%
def ewm_std_by_definition(close: np.ndarray, t: int, span: int) -> float:
    r = close[1:t + 1] / close[:t] - 1.0  # returns ending at bars 1..t
    w = (1 - 2 / (span + 1)) ** np.arange(len(r))[::-1]
    mean = (w * r).sum() / w.sum()
    biased = (w * (r - mean) ** 2).sum() / w.sum()
    return float(np.sqrt(biased * w.sum() ** 2 / (w.sum() ** 2 - (w ** 2).sum())))


vol = ewm_volatility(spx, span=100)
for t in (20, 250, 2500, 5030):
    test_close(vol.iloc[t], ewm_std_by_definition(spx.close.to_numpy(), t, 100), eps=1e-12)
test_eq(vol.iloc[:20].isna().all() and vol.iloc[20:].notna().all(), True)  # min_periods returns, then values
assert 0.025 < vol["2008-10-31"].item() < 0.04 and vol["2017-06-30"].item() < 0.006
test_fail(lambda: ewm_volatility(spx.close.where(spx.close < 2000)), contains="close must be finite and > 0")
test_fail(lambda: ewm_volatility(spx, span=0), contains="need span >= 1")
test_fail(lambda: ewm_volatility(spx.drop(columns="close")), contains="bars have no 'close' column")

# %% [markdown]
# **No lookahead**: computed on the data up to bar $t$ only, the target at $t$ is the same as in the
# full series — for every one of a spread of bars.

# %%
full = ewm_volatility(btc)
for t in [*range(15, 25), *np.linspace(25, len(btc) - 1, 60).astype(int)]:
    test_close(ewm_volatility(btc.iloc[:t + 1]).fillna(-1).iloc[-1], full.fillna(-1).iloc[t], eps=1e-12)

# %%
ax = vol.plot(figsize=(8, 2.5), title="S&P 500: EWM volatility of daily returns (span 100)", lw=0.8)
ax.set_ylabel("target");

# %% [markdown]
# ## The triple-barrier kernel
# For an event at bar $i$ with entry $p_0$ = `close[i]`, side $s$ (+1 long, −1 short) and target
# $\tau$: the **profit-taking** barrier sits at $p_0(1 + s\cdot pt\cdot\tau)$ and the **stop-loss** at
# $p_0(1 - s\cdot sl\cdot\tau)$ — for a short, profit is below. `pt` or `sl` = 0 disables that
# barrier. The **vertical** barrier is bar $i + h$. Walking $j = i+1, i+2, \dots$:
#
# * **closes only** (the default): a barrier is touched when `close[j]` reaches it; the exit price is
#   `close[j]`.
# * **intrabar** (`open`/`high`/`low` given): a barrier is touched when the bar's high or low reaches
#   it. If the bar *opens* beyond a barrier, that barrier came first and fills at the open (a gap fills
#   worse than a stop, better than a take-profit); else the fill is at the barrier. If both barriers lie
#   inside one bar's range, the order within the bar is unknown and we assume the **stop came first**
#   (conservative).
#
# Closes-only is exactly the intrabar rule on bars whose open, high and low equal their close, so one
# kernel does both. The return is side-adjusted, $s(p_{exit}/p_0 - 1)$. An event whose path runs past the
# data with no touch is **undetermined** (exit −1): a partial window would give a label that changes
# when more data arrives. Horizontal barriers need a positive target; with a NaN or zero target the
# event is undetermined too.

# %%
#| export
BARRIERS = {1: "pt", 2: "sl", 3: "vertical"}  # kernel codes; 0 = undetermined


@njit(cache=True)
def triple_barrier_nb(open_: np.ndarray,  # bar opens (closes-only labels: the closes)
                      high: np.ndarray,   # bar highs (closes-only labels: the closes)
                      low: np.ndarray,    # bar lows (closes-only labels: the closes)
                      close: np.ndarray,  # bar closes
                      entry: np.ndarray,  # int64 bar position of each event; entered at its close
                      target: np.ndarray, # each event's barrier unit, a return (fraction: 0.01 = 1 %)
                      side: np.ndarray,   # each event's side: +1 long, -1 short
                      pt: float,          # profit-taking width in targets (0 disables)
                      sl: float,          # stop-loss width in targets (0 disables)
                      vertical_bars: int, # bars until the vertical barrier
                     ) -> tuple:          # (exit bar position or -1, barrier code, side-adjusted return)
    "First barrier touched by each event's path: exit bar, which barrier (`BARRIERS`), and the return."
    n, m = close.shape[0], entry.shape[0]
    exit_ = np.full(m, -1, np.int64)
    barrier, ret = np.zeros(m, np.int8), np.full(m, np.nan)
    for e in range(m):
        i, s, p0 = entry[e], side[e], close[entry[e]]
        if (pt > 0 or sl > 0) and not target[e] > 0:
            continue
        pt_level, sl_level = p0 * (1.0 + s * pt * target[e]), p0 * (1.0 - s * sl * target[e])
        last = i + vertical_bars
        for j in range(i + 1, min(last, n - 1) + 1):
            best, worst = (high[j], low[j]) if s > 0 else (low[j], high[j])
            pt_hit = pt > 0 and s * (best - pt_level) >= 0
            sl_hit = sl > 0 and s * (sl_level - worst) >= 0
            opened_past_pt = pt > 0 and s * (open_[j] - pt_level) >= 0
            if sl_hit and not opened_past_pt:
                code, fill = 2, open_[j] if s * (sl_level - open_[j]) >= 0 else sl_level
            elif pt_hit:
                code, fill = 1, open_[j] if opened_past_pt else pt_level
            elif j == last:
                code, fill = 3, close[j]
            else:
                continue
            exit_[e], barrier[e], ret[e] = j, code, s * (fill / p0 - 1.0)
            break
    return exit_, barrier, ret


# %% [markdown]
# Hand-checked cases on a ten-bar path, target 5 %, barriers at ±1 target (so at 105 and 95 for a
# long from 100):

# %%
c = np.array([100, 102, 104, 106, 103, 99, 94, 97, 100, 101.0])
def tb(entry, pt=1.0, sl=1.0, h=5, side=1.0, target=0.05, o=c, hi=c, lo=c):
    m = len(entry)
    return triple_barrier_nb(o, hi, lo, c, np.array(entry, np.int64), np.full(m, target), np.full(m, side), pt, sl, h)

x, b, r = tb([0, 3, 7])
test_eq(x.tolist(), [3, 5, -1])           # 106 >= 105: take-profit; 99 <= 106 * 0.95: stop
test_eq(b.tolist(), [1, 2, 0])            # from bar 7 no touch, and the data ends before bar 12: undetermined
test_close(r[:2], [0.06, 99 / 106 - 1])
test_eq(np.isnan(r[2]), True)
x, b, r = tb([7], h=2)                    # 100, 101 stay inside 92.15 .. 101.85: time's up at bar 9
test_eq((x[0], b[0]), (9, 3)); test_close(r[0], 101 / 97 - 1)
x, b, r = tb([0], pt=0.0)                 # no take-profit: 106 passes, no close <= 95 by bar 5
test_eq((x[0], b[0]), (5, 3)); test_close(r[0], -0.01)
test_eq([a.tolist() for a in tb([3], sl=0.0, h=6)[:2]], [[9], [3]])  # stop disabled: 99 and 94 pass
test_eq(tb([3], target=np.nan)[0].tolist(), [-1])                      # no width, no horizontal barriers
test_eq(tb([3], pt=0.0, sl=0.0, target=np.nan, h=2)[1].tolist(), [3])  # a vertical-only label needs no target

# %% [markdown]
# A short from bar 3 (106) takes profit at $106 \cdot 0.95 = 100.7$, first reached by bar 5 (99); its
# return is side-adjusted, positive. Intrabar: a bar whose range spans both barriers is a stop; a bar
# that gaps past the stop fills at its open (worse than the stop); one that gaps past the take-profit
# is a take-profit at the open even if its low also reaches the stop.

# %%
x, b, r = tb([3], side=-1.0)
test_eq((x[0], b[0]), (5, 1))
test_close(r[0], -(99 / 106 - 1))

hi, lo, o = c.copy(), c.copy(), c.copy()
hi[1], lo[1] = 106.0, 94.0                                 # both barriers inside bar 1: the stop first
x, b, r = tb([0], o=o, hi=hi, lo=lo)
test_eq((x[0], b[0]), (1, 2)); test_close(r[0], -0.05)
o[1], lo[1], hi[1] = 93.0, 92.0, 103.0                     # opens below the stop: fills at the open
test_close(tb([0], o=o, hi=hi, lo=lo)[2][0], -0.07)
o[1], hi[1], lo[1] = 107.0, 108.0, 90.0                    # opens above the take-profit: that came first
x, b, r = tb([0], o=o, hi=hi, lo=lo)
test_eq(b[0], 1); test_close(r[0], 0.07)


# %% [markdown]
# ## `triple_barrier`
# The pandas face. `events` are bar times (a `DatetimeIndex`, each a bar of `close`; the output is in
# time order), a boolean mask over the bars, or `None` for every bar. `target` defaults to
# `ewm_volatility(close)`; a float gives fixed-width barriers. `side` (±1 per event, the *primary*
# model's bet) turns the labels into "did this bet pay", the input of meta-labeling.
#
# The **label** is +1 at the take-profit, −1 at the stop, and at the vertical barrier the sign of the
# return — AFML's `getBins` convention (the book's prose gives 0 there; the sign keeps the information
# which way the price drifted). `min_ret` adds a dead zone: a vertical exit with $|ret| <$ `min_ret`
# is labelled 0. Undetermined events keep their row, with `t1` NaT and `label` NA, so the output lines
# up with the events; drop them with `.dropna(subset=["label"])` before training.

# %%
#| export
def _event_positions(index: pd.DatetimeIndex, events) -> np.ndarray:
    "Sorted int64 bar positions of `events` (bar times, a boolean mask over `index`, or None for all)."
    if events is None:
        return np.arange(len(index), dtype=np.int64)
    if isinstance(events, pd.Series) and events.dtype == bool:
        if not events.index.equals(index):
            raise ValueError("a boolean events mask must have exactly the bars' index")
        return np.flatnonzero(events.to_numpy()).astype(np.int64)
    times = pd.DatetimeIndex(events)
    if not times.is_unique:
        raise ValueError(f"events repeat a bar time, first {times[times.duplicated()][0]}; pass each bar once")
    pos = index.get_indexer(times)
    if (pos < 0).any():
        raise ValueError(f"{int((pos < 0).sum())} event(s) are not bar times of close, first {times[pos < 0][0]}")
    return np.sort(pos).astype(np.int64)


def _per_event(values, times: pd.DatetimeIndex, name: str) -> np.ndarray:
    "float64 values of a Series (or a scalar) at the event times."
    if np.isscalar(values):
        return np.full(len(times), float(values))
    pos = values.index.get_indexer(times)
    if (pos < 0).any():
        raise ValueError(f"{name} has no value at {int((pos < 0).sum())} event time(s), first {times[pos < 0][0]}")
    return values.to_numpy(dtype="float64")[pos]


def _bar_arrays(prices, close: pd.Series, intrabar: bool) -> tuple:
    "open, high, low, close arrays for the kernel: the closes four times unless intrabar."
    c = close.to_numpy()
    if not intrabar:
        return c, c, c, c
    if not isinstance(prices, pd.DataFrame) or not {"open", "high", "low"} <= set(prices.columns):
        raise ValueError("intrabar=True needs bars with open, high and low columns, not a close Series")
    return tuple(prices[col].to_numpy(dtype="float64") for col in ("open", "high", "low")) + (c,)


# %%
#| export
def _labels(barrier: np.ndarray, ret: np.ndarray, min_ret: float) -> pd.arrays.IntegerArray:
    "+1 take-profit, -1 stop, sign of the return (0 inside the dead zone) at the vertical, NA undetermined."
    vertical = np.where(np.abs(ret) >= min_ret, np.sign(ret), 0.0)
    label = np.select([barrier == 1, barrier == 2, barrier == 3], [1.0, -1.0, vertical], np.nan)
    return pd.array(label, dtype="Int8")


def triple_barrier(close: pd.Series | pd.DataFrame, # closes, or bars (needed for intrabar)
                   events: pd.DatetimeIndex | pd.Series | None = None, # bar times, a boolean mask, or None: all
                   pt_sl: tuple[float, float] = (1.0, 1.0), # take-profit, stop-loss widths in targets; 0 disables
                   vertical_bars: int = 50,          # the vertical barrier: bars after the event
                   target: pd.Series | float | None = None, # barrier unit, a return (0.01 = 1 %); None: ewm_volatility
                   side: pd.Series | None = None,    # +1 / -1 per event (the primary model's bet); None: long
                   min_ret: float = 0.0,             # a return (0.005 = 0.5 %): smaller vertical exits get label 0
                   intrabar: bool = False,           # touches by high/low, stop first when both in one bar
                  ) -> pd.DataFrame:                 # per event: t1, barrier, ret, label, target (and side)
    "Label each event by the first barrier its path touches: take-profit, stop-loss or the vertical barrier."
    prices, close = close, _close_of(close)
    pt, sl = (float(v) for v in pt_sl)
    if not (pt >= 0 and sl >= 0) or int(vertical_bars) != vertical_bars or vertical_bars < 1:
        raise ValueError(f"need pt_sl >= 0 and an integer vertical_bars >= 1, got {pt_sl}, {vertical_bars}")
    pos = _event_positions(close.index, events)
    times = close.index[pos]
    target = ewm_volatility(close) if target is None else target
    trgt = _per_event(target, times, "target")
    sides = np.ones(len(pos)) if side is None else _per_event(side, times, "side")
    if not np.isin(sides, (-1.0, 1.0)).all():
        raise ValueError("side must be +1 or -1 at every event; drop the events where the primary model has no bet")
    exit_, code, ret = triple_barrier_nb(*_bar_arrays(prices, close, intrabar), pos, trgt, sides, pt, sl,
                                         int(vertical_bars))
    out = pd.DataFrame({
        "t1": pd.Series(close.index[np.maximum(exit_, 0)], index=times).where(exit_ >= 0),
        "barrier": pd.Series(code, index=times).map(BARRIERS).astype("str"),
        "ret": ret, "label": _labels(code, ret, min_ret), "target": trgt}, index=times)
    if side is not None:
        out["side"] = sides.astype(np.int8)
    return out.rename_axis("ts")


# %% [markdown]
# Every bar of BTC-USD hourly as an event, barriers at ±2 targets (the target is the volatility of one
# hourly return, typically 0.7 %) and a 24-bar (one day) time limit:

# %%
labels = triple_barrier(btc, pt_sl=(2, 2), vertical_bars=24)
labels.tail(3)

# %%
test_eq(list(labels.columns), ["t1", "barrier", "ret", "label", "target"])
test_eq(len(labels), len(btc))
test_eq(set(labels.barrier.dropna()), {"pt", "sl", "vertical"})
test_eq(labels.label.isna().tolist(), labels.t1.isna().tolist())
test_eq(labels.label.isna().tolist(), labels.barrier.isna().tolist())
counts = labels.label.value_counts(normalize=True)
assert counts[1] > 0.3 and counts[-1] > 0.3, counts       # BTC went both ways
# Under the definition: exit within the window, the barrier at the exit close reached, none before it.
c = btc.close.to_numpy()
pos, exit_ = np.arange(len(btc)), btc.index.get_indexer(labels.t1)
for i in np.random.default_rng(0).choice(np.flatnonzero(labels.t1.notna()), 300, replace=False):
    row, up, dn = labels.iloc[i], c[i] * (1 + 2 * labels.target.iloc[i]), c[i] * (1 - 2 * labels.target.iloc[i])
    path = c[i + 1:exit_[i]]
    assert 1 <= exit_[i] - i <= 24 and ((path < up) & (path > dn)).all()
    want = {"pt": c[exit_[i]] >= up, "sl": c[exit_[i]] <= dn, "vertical": exit_[i] - i == 24}
    assert want[row.barrier], (i, row)
    test_close(row.ret, c[exit_[i]] / c[i] - 1)
# Undetermined: the first 20 bars (no target yet) and, of the last 24, those still open at the end.
test_eq(labels.label.iloc[:20].isna().all() and labels.label.iloc[20:-24].notna().all(), True)
test_eq(bool(labels.label.iloc[-24:].isna().any()), True)

# %% [markdown]
# A dead zone of 0.5 % turns small vertical exits into 0 and leaves every other label as it was:

# %%
zoned = triple_barrier(btc, pt_sl=(2, 2), vertical_bars=24, min_ret=0.005)
small = (labels.barrier == "vertical") & (labels.ret.abs() < 0.005)
test_eq(zoned.label[small].unique().tolist(), [0])
pd.testing.assert_frame_equal(zoned[~small], labels[~small])
test_eq(int(small.sum()) > 100, True)

# %% [markdown]
# Truncating the data never changes a determined label: a label is computed from bars up to its `t1`
# only, and one whose window runs past the data waits (NA) rather than guessing.

# %%
for T in (500, 5_000, 15_000):
    part = triple_barrier(btc.iloc[:T + 1], pt_sl=(2, 2), vertical_bars=24)
    known = part.label.notna()
    pd.testing.assert_frame_equal(part[known], labels.iloc[:T + 1][known])
    late = labels.t1.iloc[20:T + 1][~known.iloc[20:]]  # past the warm-up, the open ones resolve after T
    test_eq(bool((late > btc.index[T]).all()) and len(late) > 0, True)

# %%
test_fail(lambda: triple_barrier(btc, events=btc.index[:3] + pd.Timedelta("1min")), contains="not bar times of close")
test_fail(lambda: triple_barrier(btc, vertical_bars=0), contains="integer vertical_bars >= 1")
test_fail(lambda: triple_barrier(btc, pt_sl=(1, -1)), contains="need pt_sl >= 0")
test_fail(lambda: triple_barrier(btc.close, intrabar=True), contains="needs bars with open, high and low")
test_fail(lambda: triple_barrier(btc, side=pd.Series(0, index=btc.index)), contains="side must be +1 or -1")
test_fail(lambda: triple_barrier(btc, target=ewm_volatility(btc).iloc[5:]), contains="target has no value at 5")

# %% [markdown]
# One event drawn with its barriers: the take-profit and stop at ±2 targets, the vertical barrier 24
# bars on, and the exit at `t1`. This one is a stop even though the price later passed the
# take-profit within the day: the path matters, and that is the point of the method.

# %%
i = btc.index.get_loc(labels.index[(labels.barrier == "sl")][400])
row, window = labels.iloc[i], btc.close.iloc[i - 5:i + 30]
fig, ax = plt.subplots(figsize=(8, 3))
window.plot(ax=ax, color="k", lw=1, title=f"BTC-USD event at {labels.index[i]:%Y-%m-%d %H:%M}: {row.barrier}")
p0 = btc.close.iloc[i]
ax.hlines([p0 * (1 + 2 * row.target), p0 * (1 - 2 * row.target)], btc.index[i], btc.index[i + 24],
          colors=["tab:green", "tab:red"], label="take-profit / stop")
ax.axvline(btc.index[i + 24], color="grey", ls="--", label="vertical")
ax.plot([btc.index[i], row.t1], [p0, btc.close[row.t1]], "o", color="tab:blue", label="entry, exit (t1)")
ax.legend(loc="best", fontsize=8);

# %% [markdown]
# Intrabar touches end trades sooner (a wick reaches a barrier before any close does) and resolve
# more of them at a barrier rather than at the time limit:

# %%
hl = triple_barrier(btc, pt_sl=(2, 2), vertical_bars=24, intrabar=True)
both = labels.t1.notna() & hl.t1.notna()
test_eq(bool((hl.t1[both] <= labels.t1[both]).all()), True)
assert (hl.barrier == "vertical").mean() < (labels.barrier == "vertical").mean()
pd.DataFrame({"closes": labels.barrier.value_counts(), "intrabar": hl.barrier.value_counts()})


# %% [markdown]
# ## Meta-labels
# A *primary* model picks a side; a secondary model learns **whether to act on it** (AFML 3.6). Its
# target is the meta-label: 1 when the barrier outcome of the primary's bet paid (label +1), 0 when it
# did not (stop, or a vertical exit with a loss or inside the dead zone). Pass `triple_barrier` results
# computed *with* `side=primary_side` (needed when take-profit and stop differ); for a result computed
# without a side the outcome is side-adjusted here, which is the same thing for symmetric barriers.
# Bars where the primary has no bet (0 or NaN) and undetermined labels get NA.

# %%
#| export
def meta_labels(primary_side: pd.Series,      # the primary model's bet per bar or event: +1, -1, 0/NaN = none
                barrier_result: pd.DataFrame, # `triple_barrier` output, preferably computed with this side
               ) -> pd.Series:                # Int8 per event: 1 the bet paid, 0 it did not, NA unknown / no bet
    "1 where acting on the primary model's side hit the take-profit (or won at the time limit), else 0."
    times = barrier_result.index
    side = pd.Series(_per_event(primary_side, times, "primary_side"), index=times)
    label = barrier_result["label"].astype("Float64")
    if "side" in barrier_result:
        differ = side.notna() & (side != 0) & (side != barrier_result["side"])
        if differ.any():
            raise ValueError(f"primary_side differs from the side the barriers were computed with at "
                             f"{int(differ.sum())} event(s), first {differ.index[differ][0]}")
        paid = label == 1
    else:
        paid = side * label == 1
    meta = paid.astype("Float64").where(side.isin([-1, 1]) & label.notna())
    return meta.astype("Int8").rename("meta_label")


# %% [markdown]
# A primary model on the S&P 500: long when the 20-day mean of the close is above the 100-day mean,
# short otherwise, acting on the days the sign flips (both means use closes up to that day only).

# %%
fast, slow = spx.close.rolling(20).mean(), spx.close.rolling(100).mean()
primary = np.sign(fast - slow).where(slow.notna())
flips = primary.index[(primary != primary.shift(1)) & primary.notna() & primary.shift(1).notna()]
bets = triple_barrier(spx, events=flips, pt_sl=(2, 2), vertical_bars=20, side=primary)
meta = meta_labels(primary, bets)
test_eq(len(meta), len(flips))
test_eq(meta.isna().tolist(), bets.label.isna().tolist())
known = bets.label.notna()
test_eq(meta[known].tolist(), (bets.label[known] == 1).astype(int).tolist())
paid = meta.fillna(-1)
test_eq(bool((bets.ret[paid == 1] > 0).all() and (bets.ret[paid == 0] <= 0).all()), True)
print(f"{len(flips)} crossovers; the primary's bet paid on {meta.mean():.0%} of them")

# %% [markdown]
# The same outcome computed without a side and side-adjusted by `meta_labels` agrees (the barriers
# are symmetric), and a side that contradicts the barrier result is refused:

# %%
unsided = triple_barrier(spx, events=flips, pt_sl=(2, 2), vertical_bars=20)
test_eq(meta_labels(primary, unsided).tolist(), meta.tolist())
test_fail(lambda: meta_labels(-primary, bets), contains="primary_side differs from the side")
test_fail(lambda: meta_labels(primary.iloc[200:], bets), contains="primary_side has no value at")

# %% [markdown]
# ## Regimes
# A tag per bar for slicing results and conditioning strategies, from two TA-Lib indicators (Wilder
# smoothing) that use only bars up to $t$:
#
# * **NATR** (ATR as % of the close) measures volatility. Its *past rank* at $t$ is the fraction of the
#   previous `vol_window` NATR values strictly below NATR[$t$] — the current bar against the past
#   window only, never against the future.
# * **ADX** measures trend strength whatever its direction.
#
# Rules, in precedence order: **volatile** if the NATR rank ≥ `volatile_rank` (volatility dominates:
# a crash is volatile before it is a trend); else **trending** if ADX ≥ `trending_adx` (25, Wilder's
# threshold); else **ranging**. Until both indicators and a full past window exist (warm-up) the tag is
# missing (NaN), never a guess.

# %%
#| export
REGIMES = ("trending", "ranging", "volatile")


@njit(cache=True)
def past_rank_nb(x: np.ndarray,  # a series (NaN where unknown)
                 window: int,    # how many previous values to compare with
                ) -> np.ndarray: # fraction of x[t-window:t] strictly below x[t]; NaN without a full past
    "Rank of each value against the `window` values before it (the current value is not in the window)."
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window, n):
        below, full = 0, not np.isnan(x[t])
        for k in range(t - window, t):
            if np.isnan(x[k]):
                full = False
                break
            below += x[k] < x[t]
        if full:
            out[t] = below / window
    return out


# %%
rank = past_rank_nb(np.array([1.0, 3, 2, 5, 0, 4]), 3)  # 5 tops 1 3 2; 0 tops none of 3 2 5; 4 tops 2 and 0
test_eq(np.isnan(rank[:3]).all(), True)
test_close(rank[3:], [1.0, 0.0, 2 / 3])
test_eq(np.isnan(past_rank_nb(np.array([np.nan, 1.0, 2, 3, 4]), 2)).tolist(), [True, True, True, False, False])


# %%
#| export
def regime_indicators(bars: pd.DataFrame,   # bars with high, low, close
                      adx_period: int = 14, # ADX period (Wilder)
                      atr_period: int = 14, # ATR period for the NATR (Wilder)
                      vol_window: int = 252,# past bars the NATR is ranked against
                     ) -> pd.DataFrame:     # adx, natr, natr_rank per bar (NaN in warm-up)
    "ADX, NATR and the NATR's rank against its own past window: the inputs of `tag_regimes`."
    if min(adx_period, atr_period) < 2 or vol_window < 1:
        raise ValueError(f"need adx_period, atr_period >= 2 and vol_window >= 1, "
                         f"got {adx_period}, {atr_period}, {vol_window}")
    check_time_index(bars, "bars")
    missing = {"high", "low", "close"} - set(bars.columns)
    if missing:
        raise ValueError(f"bars lack columns {sorted(missing)} needed for ADX and NATR")
    h, l, c = (bars[col].to_numpy(dtype="float64") for col in ("high", "low", "close"))
    natr = talib.NATR(h, l, c, timeperiod=atr_period)
    return pd.DataFrame({"adx": talib.ADX(h, l, c, timeperiod=adx_period), "natr": natr,
                         "natr_rank": past_rank_nb(natr, vol_window)}, index=bars.index)


def tag_regimes(bars: pd.DataFrame,         # bars with high, low, close
                adx_period: int = 14,       # ADX period (Wilder)
                trending_adx: float = 25.0, # ADX (0-100) at or above this is a trend
                atr_period: int = 14,       # ATR period for the NATR (Wilder)
                vol_window: int = 252,      # past bars the NATR is ranked against
                volatile_rank: float = 0.8, # NATR rank (a fraction in (0, 1]) at or above this is volatile
               ) -> pd.Series:              # categorical: trending / ranging / volatile, NaN in warm-up
    "Tag each bar volatile (NATR high for its past), else trending (ADX strong), else ranging."
    if not 0 < volatile_rank <= 1:
        hint = f"; for the {volatile_rank:g}th percentile pass {volatile_rank / 100:g}" if volatile_rank <= 100 else ""
        raise ValueError(f"volatile_rank is a fraction of the past window, in (0, 1]; got {volatile_rank}{hint}")
    ind = regime_indicators(bars, adx_period, atr_period, vol_window)
    tags = np.select([ind.natr_rank >= volatile_rank, ind.adx >= trending_adx], ["volatile", "trending"], "ranging")
    tags = pd.Series(tags, index=bars.index).where(ind.adx.notna() & ind.natr_rank.notna())
    return tags.astype(pd.CategoricalDtype(REGIMES)).rename("regime")


# %% [markdown]
# On the S&P 500 the rules tag 2008 mostly volatile, and the long quiet rise of 2017 trending or ranging.
# "Volatile" is relative to the bar's own past year: in 2009 volatility was high in absolute terms but
# falling from the 2008 peak, so few bars of 2009 rank as volatile.

# %%
regime = tag_regimes(spx)
ind = regime_indicators(spx)
test_eq(list(regime.cat.categories), ["trending", "ranging", "volatile"])
warm = 14 + 252  # NATR lookback, then a full past window
test_eq(regime.iloc[:warm].isna().all() and regime.iloc[warm:].notna().all(), True)
for t in np.random.default_rng(1).choice(np.arange(warm, len(spx)), 200, replace=False):  # the rules, bar by bar
    rank = (ind.natr.iloc[t - 252:t] < ind.natr.iloc[t]).mean()
    want = "volatile" if rank >= 0.8 else "trending" if ind.adx.iloc[t] >= 25 else "ranging"
    test_eq(regime.iloc[t], want)
test_close(ind.adx.to_numpy()[30:], np.asarray(talib.ADX(spx.high, spx.low, spx.close, 14))[30:])
shares = regime.groupby(regime.index.year, observed=True).value_counts(normalize=True).unstack()
assert shares.loc[2008, "volatile"] > 0.4 and shares.loc[2017, "volatile"] < 0.15, shares.loc[[2008, 2017]]
test_fail(lambda: tag_regimes(spx.drop(columns="high")), contains="bars lack columns ['high']")
test_fail(lambda: tag_regimes(spx, vol_window=0), contains="vol_window >= 1")
test_fail(lambda: tag_regimes(spx, volatile_rank=80),
          contains="volatile_rank is a fraction of the past window, in (0, 1]; got 80; for the 80th percentile pass 0.8")
test_fail(lambda: tag_regimes(spx, volatile_rank=0), contains="in (0, 1]; got 0")

# %% [markdown]
# **No lookahead**: the tag of bar $t$ computed from the bars up to $t$ equals the full-series tag,
# on both real datasets and a spread of bars (warm-up bars included).

# %%
for bars in (spx, btc):
    full = tag_regimes(bars)
    for t in np.linspace(0, len(bars) - 1, 40).astype(int):
        test_eq(str(tag_regimes(bars.iloc[:t + 1]).iloc[-1]), str(full.iloc[t]))

# %%
colors = {"trending": "tab:blue", "ranging": "tab:grey", "volatile": "tab:red"}
fig, ax = plt.subplots(figsize=(8, 3))
for name, color in colors.items():
    on = regime == name
    ax.scatter(spx.index[on], spx.close[on], s=1.5, color=color, label=name)
ax.set_yscale("log"); ax.set_title("S&P 500 daily close by regime"); ax.legend(markerscale=6, fontsize=8);
