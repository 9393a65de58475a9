"""Property tests: purged k-fold, CPCV and walk-forward never leak test labels into training.

For random label layouts `t1` (start times with ties and gaps, durations from 0 to very long, as numbers
or UTC timestamps) and random embargoes (a count or a fraction), each split is checked by brute force
against the definitions, with no call into the code under test:

- every sample is tested exactly once (k-fold) or C(N-1, k-1) times (CPCV), and never also trained on;
- no training label [start, t1] overlaps a test fold's span [first test start, max test t1];
- no training sample is among the first `embargo` samples that start after a test fold's span;
- and nothing else is dropped: training is exactly the samples these rules allow (an empty training
  set would pass the first three trivially).
"""
from itertools import combinations
from math import ceil, comb

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingbot.validation.splits import CombinatorialPurgedKFold, PurgedKFold, WalkForward

START = pd.Timestamp("2024-01-01", tz="UTC")


@st.composite
def label_layouts(draw, min_size=4):
    "A t1 Series: sorted starts (ties allowed), end >= start, as bar numbers or UTC timestamps."
    steps = draw(st.lists(st.integers(0, 5), min_size=min_size, max_size=120))
    starts = np.cumsum(steps)
    durations = np.array(draw(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 200)),
                                       min_size=len(starts), max_size=len(starts))))
    ends = starts + durations
    if draw(st.booleans()):
        hours = pd.to_timedelta(starts, unit="h")
        return pd.Series(START + pd.to_timedelta(ends, unit="h"), index=pd.DatetimeIndex(START + hours))
    return pd.Series(ends.astype("int64"), index=pd.Index(starts.astype("int64")))


embargoes = st.one_of(st.integers(0, 10), st.floats(0.0, 0.2))


def as_numbers(t1: pd.Series) -> tuple[list, list]:
    "Starts and ends as plain comparable numbers."
    if isinstance(t1.index, pd.DatetimeIndex):
        return [t.value for t in t1.index], [t.value for t in t1]
    return list(t1.index), list(t1)


def expected_train(t1: pd.Series, test_groups: list[list[int]], embargo) -> list[int]:
    "Training positions allowed by the definitions, by brute force."
    starts, ends = as_numbers(t1)
    n = len(starts)
    e = embargo if isinstance(embargo, int) else ceil(embargo * n)
    banned = set()
    for group in test_groups:
        span_start, span_end = starts[group[0]], max(ends[i] for i in group)
        banned |= set(group)
        banned |= {i for i in range(n) if starts[i] <= span_end and ends[i] >= span_start}
        banned |= set([i for i in range(n) if starts[i] > span_end][:e])
    return [i for i in range(n) if i not in banned]


def contiguous_groups(n: int, k: int) -> list[list[int]]:
    "Positions of k contiguous, near-equal groups (sizes differ by at most one, larger first)."
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    bounds = np.cumsum([0, *sizes])
    return [list(range(bounds[i], bounds[i + 1])) for i in range(k)]


@settings(max_examples=200, deadline=None)
@given(label_layouts(), st.integers(2, 6), embargoes)
def test_purged_kfold(t1, n_splits, embargo):
    n_splits = min(n_splits, len(t1))
    folds = list(PurgedKFold(n_splits, t1, embargo).split(np.zeros(len(t1))))
    assert len(folds) == n_splits
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested.tolist()) == list(range(len(t1)))  # every sample in exactly one test fold
    for (train, test), group in zip(folds, contiguous_groups(len(t1), n_splits)):
        assert test.tolist() == group
        assert train.dtype.kind == "i" and test.dtype.kind == "i"
        assert train.tolist() == expected_train(t1, [group], embargo)


@settings(max_examples=150, deadline=None)
@given(label_layouts(min_size=6), st.integers(3, 6), st.integers(1, 3), embargoes)
def test_cpcv(t1, n_groups, n_test_groups, embargo):
    n_test_groups = min(n_test_groups, n_groups - 1)
    cv = CombinatorialPurgedKFold(n_groups, n_test_groups, t1, embargo)
    splits = list(cv.split(np.zeros(len(t1))))
    groups = contiguous_groups(len(t1), n_groups)
    chosen = list(combinations(range(n_groups), n_test_groups))
    assert len(splits) == cv.get_n_splits() == comb(n_groups, n_test_groups)
    times_tested = np.zeros(len(t1), dtype=int)
    for (train, test), picked in zip(splits, chosen):
        test_groups = [groups[g] for g in picked]
        assert test.tolist() == sum(test_groups, [])
        assert train.tolist() == expected_train(t1, test_groups, embargo)
        times_tested[test] += 1
    assert set(times_tested.tolist()) == {comb(n_groups - 1, n_test_groups - 1)}

    # Path assembly: each split's value for event i is a code of (split, i); every path must hold,
    # for every event, the value of a different split that tested it.
    values = [1000.0 * s + test for s, (_, test) in enumerate(splits)]
    paths = cv.assemble_paths(values).to_numpy()
    assert paths.shape == (len(t1), comb(n_groups - 1, n_test_groups - 1))
    split_of, event_of = np.divmod(paths, 1000.0)
    assert (event_of == np.arange(len(t1))[:, None]).all()
    for i in range(len(t1)):
        testers = sorted(s for s, (_, test) in enumerate(splits) if i in test)
        assert sorted(split_of[i].astype(int).tolist()) == testers
    for g in groups:  # a path takes a whole group from one split
        assert (split_of[g] == split_of[g[0]]).all()


@settings(max_examples=150, deadline=None)
@given(label_layouts(min_size=8), st.integers(1, 4), st.one_of(st.none(), st.integers(1, 40)))
def test_walk_forward(t1, n_splits, train_size):
    n = len(t1)
    test_size = n // (n_splits + 1)
    splits = list(WalkForward(n_splits, t1, train_size=train_size).split(np.zeros(n)))
    starts, ends = as_numbers(t1)
    first = n - n_splits * test_size
    assert [test.tolist() for _, test in splits] == [list(range(lo, lo + test_size))
                                                     for lo in range(first, n, test_size)]
    for train, test in splits:
        lo = test[0]
        begin = 0 if train_size is None else max(0, lo - train_size)
        assert train.tolist() == [i for i in range(begin, lo) if ends[i] < starts[lo]]
