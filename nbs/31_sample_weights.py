# %% [markdown]
# # Sample weights
#
# > How much each overlapping label is worth: concurrency, average uniqueness and return attribution (AFML ch. 4).

# %%
#| default_exp sample_weights

# %% [markdown]
# Triple-barrier labels (`tradingbot.labeling`) overlap: with an event on every hourly bar and a
# one-day time limit, each bar's return feeds a dozen labels at once. Treating them as independent
# samples over-counts the information in busy stretches, and a model trained on them overfits there.
# López de Prado (*Advances in Financial Machine Learning*, AFML, ch. 4) weighs each label by how much
# of its span it shares with others.
#
# **Span.** A label decided at bar $t_0$ (entered at `close[t0]`) and exited at `t1` is a function of
# the returns $r_t = \log(c_t / c_{t-1})$ for $t_0 < t \le t_1$: it is *alive* on bars $t_0+1 \dots t_1$.
# This follows AFML's definition (labels are concurrent when they share a return); AFML's code snippet
# 4.1 also counts the entry bar $t_0$, whose return the label does not depend on. Undetermined labels
# (`t1` NaT) have no span and no weight: they are dropped, as they must be before training.

# %%
#| export
from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from tradingbot.data.timeframes import check_time_index

# %%
#| hide
import matplotlib.pyplot as plt
from fastcore.test import test_close, test_eq, test_fail

from tradingbot.data.samples import load_sample
from tradingbot.labeling import triple_barrier

btc = load_sample("btcusd_1h")


# %% [markdown]
# ## Kernels
# Two loops on bar positions. `concurrency_nb` counts the labels alive on each bar ($c_t$);
# `span_sum_nb` sums a per-bar quantity over each label's span, each bar's share divided among the
# $c_t$ labels alive on it — with ones it gives the uniqueness, with returns the attribution.

# %%
#| export
@njit(cache=True)
def concurrency_nb(start: np.ndarray, # int64 bar position of each label's event (t0)
                   end: np.ndarray,   # int64 bar position of each label's exit (t1), > start
                   n: int,            # number of bars
                  ) -> np.ndarray:    # int64 labels alive on each bar
    "Number of labels alive on each bar: label i lives on bars start[i]+1 .. end[i]."
    diff = np.zeros(n + 1, np.int64)
    for i in range(start.shape[0]):
        diff[start[i] + 1] += 1
        diff[end[i] + 1] -= 1
    return np.cumsum(diff[:n])


@njit(cache=True)
def span_sum_nb(start: np.ndarray,  # int64 bar position of each label's event (t0)
                end: np.ndarray,    # int64 bar position of each label's exit (t1), > start
                conc: np.ndarray,   # labels alive on each bar (`concurrency_nb`)
                values: np.ndarray, # a float per bar
               ) -> np.ndarray:     # per label: sum of values[t] / conc[t] over its span
    "Each label's share of a per-bar quantity, split equally among the labels alive on each bar."
    out = np.empty(start.shape[0])
    for i in range(start.shape[0]):
        total = 0.0
        for t in range(start[i] + 1, end[i] + 1):
            total += values[t] / conc[t]
        out[i] = total
    return out


# %% [markdown]
# A hand-checked case: six bars, three labels — A from bar 0 to 2, B from 1 to 3, C from 3 to 5.
# A lives on bars 1, 2; B on 2, 3; C on 4, 5. So bar 2 is shared (concurrency 2), bar 0 is nobody's.

# %%
start, end = np.array([0, 1, 3]), np.array([2, 3, 5])
conc = concurrency_nb(start, end, 6)
test_eq(conc.tolist(), [0, 1, 2, 1, 1, 1])
test_close(span_sum_nb(start, end, conc, np.ones(6)), [1 + 1 / 2, 1 / 2 + 1, 2.0])
test_close(span_sum_nb(start, end, conc, np.arange(6.0)), [1 + 2 / 2, 2 / 2 + 3, 4 + 5.0])


# %% [markdown]
# ## The pandas face
# All three functions take `t1` as `triple_barrier` returns it — a Series of exit times indexed by
# event time — and the bar index (or closes) the events live on.

# %%
#| export
def _spans(t1: pd.Series, index: pd.DatetimeIndex) -> tuple:
    "Bar positions (start, end) of each determined label, and its event times."
    check_time_index(pd.DataFrame(index=index), "bar index")
    t1 = t1.dropna()
    start, end = index.get_indexer(t1.index), index.get_indexer(pd.DatetimeIndex(t1))
    for name, pos, times in (("event", start, t1.index), ("t1", end, pd.DatetimeIndex(t1))):
        if (pos < 0).any():
            raise ValueError(f"{int((pos < 0).sum())} {name} time(s) are not bars of the index, first {times[pos < 0][0]}")
    if (end <= start).any():
        raise ValueError(f"t1 must come after its event; not so at {t1.index[end <= start][0]}")
    return start.astype(np.int64), end.astype(np.int64), t1.index


def concurrency(t1: pd.Series,              # exit time per event (`triple_barrier(...).t1`); NaT dropped
                index: pd.DatetimeIndex,    # the bars the events live on
               ) -> pd.Series:              # int64 labels alive on each bar
    "How many labels depend on each bar's return."
    start, end, _ = _spans(t1, index)
    return pd.Series(concurrency_nb(start, end, len(index)), index=index, name="concurrency")


def average_uniqueness(t1: pd.Series,           # exit time per event; NaT dropped
                       index: pd.DatetimeIndex, # the bars the events live on
                      ) -> pd.Series:           # per determined label: mean of 1 / concurrency over its span
    "Average uniqueness of each label (AFML 4.2): 1 alone, 1/k when always sharing with k-1 others."
    start, end, times = _spans(t1, index)
    conc = concurrency_nb(start, end, len(index))
    shares = span_sum_nb(start, end, conc, np.ones(len(index)))
    return pd.Series(shares / (end - start), index=times, name="uniqueness")


# %% [markdown]
# The hand case through the pandas face: A and B each share half their span, C is alone.

# %%
bars6 = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC", name="ts")
t1 = pd.Series(bars6[[2, 3, 5]], index=bars6[[0, 1, 3]])
test_eq(concurrency(t1, bars6).tolist(), [0, 1, 2, 1, 1, 1])
test_close(average_uniqueness(t1, bars6).to_numpy(), [0.75, 0.75, 1.0])
with_open = pd.concat([t1, pd.Series([pd.NaT], index=bars6[[4]])])  # an undetermined label: no weight
test_eq(average_uniqueness(with_open, bars6).index.tolist(), list(bars6[[0, 1, 3]]))
test_fail(lambda: concurrency(pd.Series(bars6[[1]], index=bars6[[2]]), bars6), contains="t1 must come after its event")
test_fail(lambda: concurrency(t1, bars6[1:]), contains="1 event time(s) are not bars of the index")

# %% [markdown]
# ## On real labels
# An event on every BTC-USD hour, ±2-target barriers, a 24-hour limit: labels live for about 11 hours
# on average, so about 11 share each bar and the average uniqueness is near 0.12. Every covered bar hands
# out exactly 1 in total, so $\sum_i u_i \cdot |span_i|$ equals the number of covered bars — the
# *effective* number of independent labels is far below the number of events.

# %%
labels = triple_barrier(btc, pt_sl=(2, 2), vertical_bars=24)
conc, uniq = concurrency(labels.t1, btc.index), average_uniqueness(labels.t1, btc.index)
span = btc.index.get_indexer(labels.t1.dropna()) - btc.index.get_indexer(uniq.index)
test_close((uniq * span).sum(), (conc > 0).sum(), eps=1e-6)
test_eq(conc.sum(), span.sum())
test_eq(bool(uniq.between(1 / conc.max() - 1e-12, 1 + 1e-12).all()), True)
print(f"{len(uniq)} labels, mean span {span.mean():.1f} bars, mean concurrency {conc[conc > 0].mean():.1f}, "
      f"mean uniqueness {uniq.mean():.3f}, effective labels {(uniq * span).sum() / span.mean():.0f}")

# %% [markdown]
# Sparse events overlap less. One event a day at midnight with a 24-hour limit: a label ends at the
# latest on the next event's bar, whose return that next label does not use — no bar is shared, and
# every label is fully unique. (Counting the entry bar, as AFML's snippet does, would make them share one.)

# %%
daily = triple_barrier(btc, events=btc.index[btc.index.hour == 0], pt_sl=(2, 2), vertical_bars=24)
uniq_daily = average_uniqueness(daily.t1, btc.index)
test_eq(bool((uniq_daily == 1).all()) and len(uniq_daily) > 800, True)
assert uniq.mean() < 0.2

fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
conc.loc["2018-02-01":"2018-02-07"].plot(ax=axes[0], drawstyle="steps-post", title="labels alive per bar, a week")
axes[1].hist([uniq, uniq_daily], bins=40, range=(0, 1), density=True, label=["every hour", "once a day"])
axes[1].set_title("average uniqueness"); axes[1].legend(fontsize=8);


# %% [markdown]
# ## Return attribution
# AFML 4.10 weighs a label by the absolute sum of the log returns over its span, each divided by that
# bar's concurrency: $w_i \propto \left|\sum_{t \in span_i} r_t / c_t\right|$, scaled so the weights sum
# to the number of labels (mean 1). Labels that captured large moves count more; ones that drifted
# nowhere count less. Because each bar's return is split among the labels alive on it, the signed
# shares add up to the total log return over the covered bars.

# %%
#| export
def return_weights(t1: pd.Series,                 # exit time per event; NaT dropped
                   close: pd.Series | pd.DataFrame, # closes (or bars) on the bars the events live on
                  ) -> pd.Series:                 # per determined label: weight, mean 1
    "Sample weights by attributed absolute log return (AFML 4.10), scaled to sum to the number of labels."
    close = close["close"] if isinstance(close, pd.DataFrame) else close
    start, end, times = _spans(t1, close.index)
    prices = close.to_numpy(dtype="float64")
    if not (np.isfinite(prices) & (prices > 0)).all():
        raise ValueError("close must be finite and > 0 to take log returns; clean the bars with validate_bars")
    log_ret = np.r_[0.0, np.diff(np.log(prices))]  # r_t ends at bar t; bar 0's is never in a span
    shares = np.abs(span_sum_nb(start, end, concurrency_nb(start, end, len(close)), log_ret))
    if not shares.sum() > 0:
        raise ValueError("every label's attributed return is zero (flat prices?); no weights to scale")
    return pd.Series(shares * len(shares) / shares.sum(), index=times, name="weight")


# %% [markdown]
# Hand case: closes 100, 110, 121, 121, 133.1, 146.41 — four bars up 10 %, one flat. A gets
# $r_1 + r_2/2$, B $r_2/2 + r_3$, C $r_4 + r_5$; with $g = \log 1.1$ that is 1.5g, 0.5g, 2g, scaled by
# $3 / 4g$:

# %%
close6 = pd.Series([100, 110, 121, 121, 133.1, 146.41], index=bars6)
test_close(return_weights(t1, close6).to_numpy(), [1.125, 0.375, 1.5])
test_fail(lambda: return_weights(t1, close6 * 0 + 5), contains="every label's attributed return is zero")
test_fail(lambda: return_weights(t1, close6 - 110), contains="close must be finite and > 0")

# %%
w = return_weights(labels.t1, btc.close)
test_eq(w.index.equals(uniq.index), True)
test_close(w.sum(), len(w), eps=1e-6)
log_ret = np.log(btc.close).diff().fillna(0).to_numpy()
start, end = btc.index.get_indexer(w.index), btc.index.get_indexer(labels.t1.dropna())
signed = span_sum_nb(start, end, conc.to_numpy(), log_ret)
test_close(signed.sum(), log_ret[conc.to_numpy() > 0].sum(), eps=1e-9)  # the shares add up
assert w[labels.barrier.dropna() != "vertical"].mean() > w[labels.barrier.dropna() == "vertical"].mean()
