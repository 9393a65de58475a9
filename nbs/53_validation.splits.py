# %% [markdown]
# # Cross-validation splits
#
# > Purged k-fold with embargo, anchored and rolling walk-forward, and combinatorial purged CV with its backtest paths — sklearn-compatible splitters for labels that span time.

# %%
#| default_exp validation.splits

# %% [markdown]
# A triple-barrier label decided at bar $t$ is only known at its end time $t_1$ (AFML ch. 3), so each
# sample covers an interval $[t, t_1]$. Ordinary k-fold leaks: a training label whose interval overlaps
# the test fold has seen test prices. López de Prado (*Advances in Financial Machine Learning*, ch. 7
# and 12) fixes this in two steps, which every splitter here applies:
#
# - **Purge**: drop from training every sample whose interval $[t, t_1]$ overlaps a test fold's span
#   $[\text{first test start}, \max t_1 \text{ of the fold}]$.
# - **Embargo**: also drop the first $e$ samples that start after a test fold's span, because features
#   built from serially correlated data (moving averages, volatility) still carry the test period.
#
# The label intervals come as `t1`: a `pd.Series` indexed by event start time (sorted) whose values
# are the end times — the `t1` column of `tradingbot.labeling.triple_barrier`. Times may be UTC
# timestamps or plain numbers (bar positions). The rows of `X` are these events, in the same order.
# Splitters yield `(train_idx, test_idx)` integer arrays, so they plug into sklearn's
# `cross_val_score(..., cv=splitter)`.

# %%
#| export
from __future__ import annotations

from itertools import combinations
from math import ceil, comb

import numpy as np
import pandas as pd

# %%
#| hide
import matplotlib.pyplot as plt
from fastcore.test import test_eq, test_fail
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from tradingbot.data.samples import load_sample

# %% [markdown]
# Labels on real bars for the lessons below: one event per hourly BTC bar over three months, each
# ending after a random 1-48 hours (a stand-in for where a triple barrier would be touched).

# %%
btc = load_sample("btcusd_1h").iloc[:2000]
rng = np.random.default_rng(0)
ends = np.minimum(np.arange(len(btc)) + rng.integers(1, 49, len(btc)), len(btc) - 1)
t1 = pd.Series(btc.index[ends], index=btc.index)
t1.head(3)


# %% [markdown]
# ## Label intervals and the purge
# `label_intervals` checks `t1` and turns it into two sortable arrays (timestamps become UTC
# nanoseconds). `purged_train_mask` is the one rule every splitter uses: given the test blocks
# (contiguous runs of positions), it keeps for training exactly the samples outside every block, not
# overlapping any block's span, and not among the first `embargo` samples after a block's span.

# %%
#| export
def _as_times(values) -> np.ndarray:
    "Timestamps as UTC int64 nanoseconds (naive = UTC); numbers as float64."
    values = pd.Index(values)
    if isinstance(values, pd.DatetimeIndex):
        return (values if values.tz is None else values.tz_convert("UTC").tz_localize(None)).as_unit("ns").asi8
    if values.dtype.kind in "iuf":
        return values.to_numpy(dtype="float64")
    raise TypeError(f"label times must be timestamps or numbers, got {values.dtype}")


def label_intervals(t1: pd.Series,  # label end time per event (index: event start time, sorted)
                   ) -> tuple[np.ndarray, np.ndarray]:  # (starts, ends): UTC nanoseconds, or the numbers given
    "Start and end of each label from `t1` (index: start, value: end), after checking them."
    if not isinstance(t1, pd.Series):
        raise TypeError(f"t1 must be a pd.Series (index: event start, values: label end), got {type(t1).__name__}")
    if t1.isna().any():
        raise ValueError(f"t1 has {int(t1.isna().sum())} missing end time(s); drop unresolved events first "
                         f"(t1.dropna()) and the matching rows of X")
    starts, ends = _as_times(t1.index), _as_times(t1.to_numpy())
    if len(starts) > 1 and (np.diff(starts) < 0).any():
        raise ValueError("t1 must be sorted by event start time; use t1.sort_index() and sort X the same way")
    if (ends < starts).any():
        first = int(np.flatnonzero(ends < starts)[0])
        raise ValueError(f"t1 ends before it starts at position {first} ({t1.index[first]} -> {t1.iloc[first]})")
    return starts, ends


def embargo_count(embargo: int | float,  # a count of samples (int >= 0) or a fraction of n in [0, 1)
                  n: int,                 # number of samples
                 ) -> int:                # samples to embargo
    "Samples to embargo: an int is a count, a float in [0, 1) a fraction of `n` (rounded up)."
    if isinstance(embargo, (int, np.integer)) and embargo >= 0:
        return int(embargo)
    if isinstance(embargo, float) and 0 <= embargo < 1:
        return ceil(embargo * n)
    raise ValueError(f"embargo must be a sample count (int >= 0) or a fraction in [0, 1), got {embargo!r}")


def purged_train_mask(starts: np.ndarray,  # label start times, sorted
                      ends: np.ndarray,    # label end times
                      blocks,              # test blocks as (first, stop) position pairs
                      embargo: int = 0,    # samples to drop after each block's span
                     ) -> np.ndarray:      # True for samples that may train
    "Training mask: outside every test block, not overlapping its span, not embargoed after it."
    train = np.ones(len(starts), dtype=bool)
    for lo, hi in blocks:
        span_start, span_end = starts[lo], ends[lo:hi].max()
        train &= ~((starts <= span_end) & (ends >= span_start))   # also removes the block itself
        after = np.searchsorted(starts, span_end, side="right")   # first sample starting after the span
        train[after:after + embargo] = False
    return train


# %% [markdown]
# Six events on a number line: testing events 2-3 (span 2..6) purges event 1, whose label runs into the
# span, and events 4 and 5, which start inside it; an embargo of 1 also drops event 6, the first to
# start after the span.

# %%
toy = pd.Series([1, 3, 4, 6, 6, 7, 8, 9], index=[0, 1, 2, 3, 4, 5, 7, 8])
s, e = label_intervals(toy)
test_eq(purged_train_mask(s, e, [(2, 4)]).nonzero()[0].tolist(), [0, 6, 7])
test_eq(purged_train_mask(s, e, [(2, 4)], embargo=1).nonzero()[0].tolist(), [0, 7])
test_eq(_as_times(t1.index)[:2].tolist(), [btc.index[0].value, btc.index[1].value])
test_eq((embargo_count(3, 100), embargo_count(0.01, 150), embargo_count(0.0, 9)), (3, 2, 0))
test_fail(lambda: embargo_count(1.5, 100), contains="fraction in [0, 1), got 1.5")
test_fail(lambda: label_intervals(toy.iloc[::-1]), contains="sorted by event start")
test_fail(lambda: label_intervals(pd.Series([0, 5], index=[1, 2])), contains="ends before it starts at position 0")
test_fail(lambda: label_intervals(t1.where(t1.index < t1.index[-5])), contains="5 missing end time(s)")


# %% [markdown]
# ## Purged k-fold
# The samples are cut into `n_splits` contiguous folds in time order; each is the test fold once and
# every sample is tested exactly once. Training is everything else, purged and embargoed.

# %%
#| export
def _check_rows(X, t1: pd.Series) -> int:
    "Number of rows of X, after checking they are the events of t1."
    n = len(t1) if X is None else len(X)
    if n != len(t1):
        raise ValueError(f"X has {n} rows but t1 has {len(t1)} events; X's rows must be t1's events, in order")
    index = getattr(X, "index", None)
    if isinstance(index, pd.DatetimeIndex) and not index.equals(pd.Index(t1.index)):
        raise ValueError("X's index differs from t1's index; X's rows must be t1's events, in the same order")
    return n


class PurgedKFold:
    "K-fold over contiguous time blocks, with training labels purged and embargoed around each test fold."

    def __init__(self, n_splits: int = 5,          # number of folds (>= 2)
                 t1: pd.Series | None = None,      # label end time per event (index: start time)
                 embargo: int | float = 0,         # samples after each test fold kept out of training
                ):
        if n_splits < 2:
            raise ValueError(f"n_splits must be at least 2, got {n_splits}")
        if t1 is None:
            raise ValueError("PurgedKFold needs t1, the label end time of each event, to purge")
        self.n_splits, self.t1, self.embargo = n_splits, t1, embargo
        self.starts, self.ends = label_intervals(t1)

    def get_n_splits(self, X=None,     # unused (sklearn's signature)
                     y=None,           # unused
                     groups=None,      # unused
                    ) -> int:
        "Number of folds."
        return self.n_splits

    def split(self, X=None,     # one row per event of t1, in order (None: t1's events)
              y=None,           # unused (sklearn's signature)
              groups=None,      # unused (sklearn's signature)
             ):
        "Yield (train_idx, test_idx) per fold, in time order."
        n = _check_rows(X, self.t1)
        if self.n_splits > n:
            raise ValueError(f"cannot make {self.n_splits} folds of {n} events")
        e = embargo_count(self.embargo, n)
        for fold in np.array_split(np.arange(n), self.n_splits):
            train = purged_train_mask(self.starts, self.ends, [(fold[0], fold[-1] + 1)], e)
            yield np.flatnonzero(train), fold


# %%
cv = PurgedKFold(5, t1, embargo=0.01)
folds = list(cv.split(btc))
test_eq(np.sort(np.concatenate([test for _, test in folds])), np.arange(len(btc)))   # each sample tested once
for train, test in folds:
    span_start, span_end = t1.index[test[0]], t1.iloc[test].max()
    test_eq(((t1.index[train] <= span_end) & (t1.iloc[train] >= span_start)).any(), False)   # purged
    after = np.flatnonzero(t1.index > span_end)[:20]                                       # 1 % of 2000
    test_eq(np.intersect1d(train, after).size, 0)                                           # embargoed
    assert len(train) > len(btc) * 0.75   # purging costs only the labels near the fold edges
test_fail(lambda: next(cv.split(btc.iloc[:-1])), contains="X has 1999 rows but t1 has 2000 events")
test_fail(lambda: PurgedKFold(1, t1), contains="n_splits must be at least 2")

# %% [markdown]
# The picture of the five folds: one row per split, each event coloured by its role. The red slivers
# beside each test fold are the training events the purge and the embargo removed.

# %%
ROLES = ["not used", "train", "test", "purged or embargoed"]
ROLE_COLORS = ["#e8e8e8", "#4c72b0", "#dd8452", "#c44e52"]


def split_roles(splits, n: int, past_only: bool = False) -> np.ndarray:
    "Role (index into ROLES) of each event in each split; `past_only`: only events before the test block could train."
    grid = np.zeros((len(splits), n), dtype=int)
    for row, (train, test) in zip(grid, splits):
        could_train = np.arange(train.min(), test.min()) if past_only else np.setdiff1d(np.arange(n), test)
        row[could_train], row[train], row[test] = 3, 1, 2
    return grid


def show_roles(ax, grid: np.ndarray, title: str):
    ax.imshow(grid, aspect="auto", cmap=ListedColormap(ROLE_COLORS), vmin=0, vmax=3, interpolation="nearest")
    ax.set(title=title, xlabel="event", ylabel="split", yticks=range(len(grid)))


def role_legend(fig, roles=ROLES, colors=ROLE_COLORS):
    fig.legend([Patch(color=c) for c in colors], roles, loc="lower center", ncol=len(roles), frameon=False)


kfold_roles = split_roles(folds, len(btc))
for row, (train, test) in zip(kfold_roles, folds):
    dropped = np.flatnonzero(row == 3)
    test_eq((row == 1).sum(), len(train))
    assert np.abs(dropped[:, None] - test[[0, -1]]).min(axis=1).max() <= 48 + 20   # only at the fold's edges

# %% [markdown]
# Close up on the end of the second test fold (events 400-799): every event is drawn as its label
# interval $[t, t_1]$. The fold's labels run on past its last event, to the end of the shaded span; the
# events that start inside that span are purged, the next 1 % (20 events) are embargoed, and training
# resumes after them.

# %%
test_fold = folds[1][1]
starts, ends_ = label_intervals(t1)
block = [(test_fold[0], test_fold[-1] + 1)]
purged = ~purged_train_mask(starts, ends_, block, 0)
embargoed = ~purged_train_mask(starts, ends_, block, 20) & ~purged
window = np.arange(785, 885)
end_pos = btc.index.get_indexer(t1.iloc[window])
close_up = np.select([np.isin(window, test_fold), purged[window], embargoed[window]], [2, 3, 4], 1)
test_eq(set(close_up), {1, 2, 3, 4})
assert (window[close_up == 3] >= 800).all()   # inside the window, only events after the fold are purged

fig, (overview, zoom) = plt.subplots(2, 1, figsize=(9, 6), height_ratios=[1, 1.4])
show_roles(overview, kfold_roles, "PurgedKFold(5, embargo=1 %) on 2,000 hourly events")
colors = ROLE_COLORS + ["#8172b3"]
span_end = btc.index.get_indexer([t1.iloc[test_fold].max()])[0]   # the bar the fold's last label ends on
zoom.axvspan(window[0], span_end, color=ROLE_COLORS[2], alpha=0.12, lw=0)
zoom.hlines(window, window, end_pos, colors=[colors[r] for r in close_up], lw=1.5)
zoom.set(xlim=(window[0], window[-1] + 48), xlabel="bar", ylabel="event (start)",
         title="fold 2 close up: label intervals [t, t1]; shaded: the test labels' span")
fig.tight_layout(rect=(0, 0.06, 1, 1))
role_legend(fig, ["train", "test", "purged", "embargoed"], colors[1:]);

# %% [markdown]
# Because they are plain `split`/`get_n_splits` objects, sklearn takes them as `cv`:

# %%
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

X = pd.DataFrame({"ret": btc.close.pct_change().fillna(0), "range": (btc.high - btc.low) / btc.close})
y = (btc.close.shift(-12) > btc.close).astype(int)
scores = cross_val_score(LogisticRegression(), X, y, cv=cv)
test_eq(len(scores), 5)


# %% [markdown]
# ## Walk-forward
# Walk-forward trains only on the past: `n_splits` consecutive test blocks of `test_size` samples end
# the data, each trained on what precedes it — all of it (**anchored**, `train_size=None`) or the last
# `train_size` samples (**rolling**). Training labels that end at or after the test block's first start
# are purged; no embargo is needed because nothing after a test block is ever trained on.

# %%
#| export
class WalkForward:
    "Anchored (expanding) or rolling walk-forward splits, purged when label end times are given."

    def __init__(self, n_splits: int = 5,            # number of consecutive test blocks
                 t1: pd.Series | None = None,        # label end times; None = labels end at their own bar
                 test_size: int | None = None,       # samples per test block; default n // (n_splits + 1)
                 train_size: int | None = None,      # None: anchored; else a rolling window of this many samples
                ):
        if n_splits < 1:
            raise ValueError(f"n_splits must be at least 1, got {n_splits}")
        self.n_splits, self.t1, self.test_size, self.train_size = n_splits, t1, test_size, train_size

    def get_n_splits(self, X=None,     # unused (sklearn's signature)
                     y=None,           # unused
                     groups=None,      # unused
                    ) -> int:
        "Number of test blocks."
        return self.n_splits

    def split(self, X=None,     # the samples: one row per event of t1 (needed when t1 is None)
              y=None,           # unused (sklearn's signature)
              groups=None,      # unused (sklearn's signature)
             ):
        "Yield (train_idx, test_idx) per test block, oldest first."
        if self.t1 is None:
            n = len(X)
            starts = ends = np.arange(n, dtype="float64")
        else:
            n = _check_rows(X, self.t1)
            starts, ends = label_intervals(self.t1)
        test_size = self.test_size or n // (self.n_splits + 1)
        first_test = n - self.n_splits * test_size
        if test_size < 1 or first_test < 1:
            raise ValueError(f"{n} samples cannot hold {self.n_splits} test blocks of {test_size} after a training set")
        for lo in range(first_test, n, test_size):
            begin = 0 if self.train_size is None else max(0, lo - self.train_size)
            train = np.arange(begin, lo)
            yield train[ends[train] < starts[lo]], np.arange(lo, lo + test_size)


# %%
anchored = list(WalkForward(4, t1, test_size=300).split(btc))
rolling = list(WalkForward(4, t1, test_size=300, train_size=600).split(btc))
test_eq([te[0] for _, te in anchored], [800, 1100, 1400, 1700])
test_eq([tr[0] for tr, _ in anchored], [0, 0, 0, 0])
test_eq([tr[0] for tr, _ in rolling], [200, 500, 800, 1100])
for train, test in anchored + rolling:
    assert train.max() < test[0] and (t1.iloc[train] < t1.index[test[0]]).all()   # past only, purged
    assert test[0] - train.max() <= 48                                           # at most one label span lost
test_eq([len(te) for _, te in WalkForward(3).split(np.zeros(100))], [25, 25, 25])
test_eq(next(WalkForward(3).split(np.zeros(100)))[0], np.arange(25))   # without t1 nothing is purged
test_fail(lambda: next(WalkForward(5, test_size=30).split(np.zeros(100))), contains="cannot hold 5 test blocks of 30")

# %% [markdown]
# Anchored and rolling, side by side: the test blocks march forward; training is everything before
# (anchored) or a fixed window before (rolling), minus the few labels that run into the test block.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8), sharey=True)
for ax, splits_, name in zip(axes, (anchored, rolling), ("anchored", "rolling, 600 events")):
    roles = split_roles(splits_, len(btc), past_only=True)
    test_eq([(r == 2).sum() for r in roles], [300] * 4)
    show_roles(ax, roles, f"WalkForward(4), {name}")
fig.tight_layout(rect=(0, 0.12, 1, 1))
role_legend(fig);


# %% [markdown]
# ## Combinatorial purged CV
# One walk-forward or k-fold run gives one backtest path, and one path is easy to overfit. CPCV
# (AFML ch. 12) cuts the samples into $N$ groups and tests every choice of $k$ of them: $\binom{N}{k}$
# splits, each purged and embargoed around every test group. Each group is tested
# $\binom{N-1}{k-1}$ times, and those out-of-sample pieces assemble into
# $\varphi = \frac{k}{N}\binom{N}{k} = \binom{N-1}{k-1}$ complete backtest paths: path $p$ takes group
# $g$'s predictions from the $p$-th split that tested $g$.

# %%
#| export
def cpcv_paths(n_groups: int,       # N: contiguous time groups
               n_test_groups: int,  # k: groups tested per split
              ) -> np.ndarray:      # split number per (path, group)
    "Split number feeding each (path, group): shape (C(N-1, k-1), N), splits in `combinations` order."
    splits = list(combinations(range(n_groups), n_test_groups))
    paths = np.empty((comb(n_groups - 1, n_test_groups - 1), n_groups), dtype=np.int64)
    for g in range(n_groups):
        paths[:, g] = [s for s, groups in enumerate(splits) if g in groups]
    return paths


# %%
test_eq(cpcv_paths(4, 2).tolist(), [[0, 0, 1, 2], [1, 3, 3, 4], [2, 4, 5, 5]])
p = cpcv_paths(6, 2)
test_eq(p.shape, (5, 6))
test_eq(np.bincount(p.ravel()).tolist(), [2] * 15)   # every split's two test groups land on paths
splits6 = list(combinations(range(6), 2))
assert all(g in splits6[p[i, g]] for i in range(5) for g in range(6))


# %%
#| export
class CombinatorialPurgedKFold:
    "Combinatorial purged CV: every choice of `n_test_groups` of `n_groups` time blocks as the test set."

    def __init__(self, n_groups: int = 6,             # N: contiguous time groups
                 n_test_groups: int = 2,              # k: groups tested per split
                 t1: pd.Series | None = None,         # label end time per event (index: start time)
                 embargo: int | float = 0,            # samples after each test group kept out of training
                ):
        if not 1 <= n_test_groups < n_groups:
            raise ValueError(f"need 1 <= n_test_groups < n_groups, got k={n_test_groups}, N={n_groups}")
        if t1 is None:
            raise ValueError("CombinatorialPurgedKFold needs t1, the label end time of each event, to purge")
        self.n_groups, self.n_test_groups, self.t1, self.embargo = n_groups, n_test_groups, t1, embargo
        self.starts, self.ends = label_intervals(t1)

    def get_n_splits(self, X=None,     # unused (sklearn's signature)
                     y=None,           # unused
                     groups=None,      # unused
                    ) -> int:
        "Number of splits: C(N, k)."
        return comb(self.n_groups, self.n_test_groups)

    @property
    def n_paths(self) -> int:
        "Number of complete backtest paths: C(N-1, k-1)."
        return comb(self.n_groups - 1, self.n_test_groups - 1)

    def groups(self) -> list[np.ndarray]:
        "Positions of each of the N groups."
        return np.array_split(np.arange(len(self.t1)), self.n_groups)

    def split(self, X=None,     # one row per event of t1, in order (None: t1's events)
              y=None,           # unused (sklearn's signature)
              groups=None,      # unused (sklearn's signature)
             ):
        "Yield (train_idx, test_idx) for each combination of test groups, in `itertools.combinations` order."
        n = _check_rows(X, self.t1)
        e = embargo_count(self.embargo, n)
        parts = self.groups()
        for chosen in combinations(range(self.n_groups), self.n_test_groups):
            blocks = [(parts[g][0], parts[g][-1] + 1) for g in chosen]
            train = purged_train_mask(self.starts, self.ends, blocks, e)
            yield np.flatnonzero(train), np.concatenate([parts[g] for g in chosen])

    def assemble_paths(self, split_values,  # per split, in `split` order: values aligned to its test_idx
                      ) -> pd.DataFrame:      # events x paths
        "Backtest paths from each split's out-of-sample values (aligned to its test_idx): events x paths."
        if len(split_values) != self.get_n_splits():
            raise ValueError(f"need one array of test values per split ({self.get_n_splits()}), "
                             f"got {len(split_values)}")
        parts, chosen = self.groups(), list(combinations(range(self.n_groups), self.n_test_groups))
        out = np.full((len(self.t1), self.n_paths), np.nan)
        for path, row in enumerate(cpcv_paths(self.n_groups, self.n_test_groups)):
            for g, s in enumerate(row):
                values = np.asarray(split_values[s], dtype="float64")
                lengths = [len(parts[c]) for c in chosen[s]]
                if len(values) != sum(lengths):
                    raise ValueError(f"split {s} tested {sum(lengths)} events but got {len(values)} values")
                offset = sum(lengths[:chosen[s].index(g)])
                out[parts[g], path] = values[offset:offset + len(parts[g])]
        return pd.DataFrame(out, index=self.t1.index, columns=[f"path_{p}" for p in range(self.n_paths)])


# %% [markdown]
# Six groups, two tested at a time: fifteen splits, five paths. Each group is tested
# $\binom{5}{1} = 5$ times and every training set is purged and embargoed around both test groups.

# %%
cpcv = CombinatorialPurgedKFold(6, 2, t1, embargo=10)
splits = list(cpcv.split(btc))
test_eq((len(splits), cpcv.get_n_splits(), cpcv.n_paths), (15, 15, 5))
times_tested = np.zeros(len(btc), dtype=int)
for train, test in splits:
    times_tested[test] += 1
    test_eq(np.intersect1d(train, test).size, 0)
    for g in cpcv.groups():
        if np.isin(g, test).all():
            span_start, span_end = t1.index[g[0]], t1.iloc[g].max()
            test_eq(((t1.index[train] <= span_end) & (t1.iloc[train] >= span_start)).any(), False)
            test_eq(np.intersect1d(train, np.flatnonzero(t1.index > span_end)[:10]).size, 0)
test_eq(set(times_tested), {5})

# %% [markdown]
# The fifteen splits: two of the six groups are tested in each, and each test group has its purge and
# embargo beside it.

# %%
fig, ax = plt.subplots(figsize=(9, 3.6))
cpcv_roles = split_roles(splits, len(btc))
test_eq((cpcv_roles == 2).sum(axis=0).tolist(), [5] * len(btc))   # each event tested in 5 of the 15
show_roles(ax, cpcv_roles, "CombinatorialPurgedKFold(6, 2, embargo=10)")
fig.tight_layout(rect=(0, 0.08, 1, 1))
role_legend(fig);

# %% [markdown]
# Assembling paths: give each split's out-of-sample values (here a prediction that records which
# split made it). Every path covers every event exactly once, each from a split that tested it.

# %%
made_by = [np.full(len(test), s, dtype=float) for s, (_, test) in enumerate(splits)]
paths = cpcv.assemble_paths(made_by)
test_eq(paths.shape, (2000, 5))
test_eq(paths.isna().sum().sum(), 0)
for e_ in range(0, 2000, 97):
    test_eq(sorted(paths.iloc[e_].astype(int)), sorted(s for s, (_, te) in enumerate(splits) if e_ in te))
test_fail(lambda: cpcv.assemble_paths(made_by[:-1]), contains="one array of test values per split (15), got 14")
