"""Triple-barrier labels, meta-labels, regime tags and sample weights against slow pure-Python references.

The references below restate each definition bar by bar (long and short written out, closes-only and
intrabar written separately) without calling the code under test. They are checked on the bundled
real data (BTC-USD hourly, S&P 500 daily) and on hypothesis-generated series; the no-lookahead
properties are checked by perturbing prices after `t1` and by truncating the data.
"""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingbot.data.samples import load_sample
from tradingbot.labeling import ewm_volatility, meta_labels, regime_indicators, tag_regimes, triple_barrier
from tradingbot.sample_weights import average_uniqueness, concurrency, return_weights


@pytest.fixture(scope="module")
def btc():
    return load_sample("btcusd_1h")


@pytest.fixture(scope="module")
def spx():
    return load_sample("spx_1d")


# ---------------------------------------------------------------- triple-barrier reference

def reference_event(o, h, l, c, i, target, side, pt, sl, vertical_bars, intrabar):
    "(exit position, barrier name, side-adjusted return) of one event, or (None, None, nan) if undetermined."
    p0 = c[i]
    if (pt > 0 or sl > 0) and not (target > 0):
        return None, None, math.nan
    if side == 1:
        take, stop = p0 * (1 + pt * target), p0 * (1 - sl * target)
    else:
        take, stop = p0 * (1 - pt * target), p0 * (1 + sl * target)
    for j in range(i + 1, len(c)):
        if j > i + vertical_bars:
            break
        if intrabar:
            hit = exit_long_intrabar if side == 1 else exit_short_intrabar
            name, price = hit(o[j], h[j], l[j], take if pt > 0 else None, stop if sl > 0 else None)
        elif side == 1:
            name, price = ("pt", c[j]) if pt > 0 and c[j] >= take else ("sl", c[j]) if sl > 0 and c[j] <= stop \
                else (None, None)
        else:
            name, price = ("pt", c[j]) if pt > 0 and c[j] <= take else ("sl", c[j]) if sl > 0 and c[j] >= stop \
                else (None, None)
        if name is None and j == i + vertical_bars:
            name, price = "vertical", c[j]
        if name is not None:
            ret = price / p0 - 1 if side == 1 else 1 - price / p0
            return j, name, ret
    return None, None, math.nan


def exit_long_intrabar(o, h, l, take, stop):
    if take is not None and o >= take:
        return "pt", o  # gapped through the take-profit: it came first, at the open
    if stop is not None and l <= stop:
        return "sl", min(o, stop)  # stop first when both are in the bar; a gap fills at the open
    if take is not None and h >= take:
        return "pt", take
    return None, None


def exit_short_intrabar(o, h, l, take, stop):
    if take is not None and o <= take:
        return "pt", o
    if stop is not None and h >= stop:
        return "sl", max(o, stop)
    if take is not None and l <= take:
        return "pt", take
    return None, None


def reference_labels(bars, events, pt, sl, vertical_bars, target, side=None, min_ret=0.0, intrabar=False):
    "The reference as a frame shaped like `triple_barrier`'s output."
    o, h, l, c = (bars[k].tolist() for k in ("open", "high", "low", "close"))
    rows = []
    for ts in events:
        i = bars.index.get_loc(ts)
        s = 1 if side is None else int(side[ts])
        trgt = float(target) if np.isscalar(target) else float(target[ts])
        j, name, ret = reference_event(o, h, l, c, i, trgt, s, pt, sl, vertical_bars, intrabar)
        if name is None:
            label = None
        elif name == "vertical":
            label = 0 if abs(ret) < min_ret else int(np.sign(ret))
        else:
            label = 1 if name == "pt" else -1
        rows.append({"t1": bars.index[j] if j is not None else pd.NaT, "barrier": name, "ret": ret,
                     "label": label, "target": trgt, "side": s})
    return pd.DataFrame(rows, index=pd.DatetimeIndex(events, name="ts"),
                        columns=["t1", "barrier", "ret", "label", "target", "side"])


def assert_same_labels(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got.index.equals(want.index)
    assert got.t1.isna().tolist() == want.t1.isna().tolist()
    known = want.t1.notna().to_numpy()
    assert (got.t1[known] == want.t1[known]).all()
    assert got.barrier.fillna("-").tolist() == want.barrier.fillna("-").tolist()
    np.testing.assert_allclose(got.ret.to_numpy(), want.ret.to_numpy(dtype="float64"), rtol=1e-12, atol=1e-15)
    assert got.label.astype("Float64").fillna(9).tolist() == want.label.fillna(9).astype(float).tolist()
    np.testing.assert_array_equal(got.target.to_numpy(), want.target.to_numpy())
    if "side" in got:
        assert got.side.tolist() == want.side.tolist()


def bars_from_walk(seed: int, n: int, tick: float | None) -> pd.DataFrame:
    "Random valid OHLC bars; prices rounded to `tick` (ties with barriers) when given."
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = np.r_[100.0, close[:-1]] * np.exp(rng.normal(0, 0.01, n))
    if tick:
        close, open_ = np.round(close / tick) * tick, np.round(open_ / tick) * tick
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, n)))
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="ts")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx)


# ---------------------------------------------------------------- triple_barrier == reference

REAL_CASES = [  # (sample, pt, sl, vertical_bars, side, min_ret, intrabar, every k-th bar)
    ("btcusd_1h", 2.0, 2.0, 24, None, 0.0, False, 1),
    ("btcusd_1h", 1.0, 3.0, 48, "alternate", 0.002, True, 3),
    ("btcusd_1h", 0.0, 1.5, 12, "alternate", 0.0, False, 2),
    ("spx_1d", 1.0, 1.0, 10, None, 0.0, True, 1),
    ("spx_1d", 2.0, 0.0, 20, "trend", 0.005, False, 1),
    ("spx_1d", 0.0, 0.0, 5, "trend", 0.01, True, 1),
]


@pytest.mark.parametrize("name,pt,sl,vertical_bars,side_rule,min_ret,intrabar,every", REAL_CASES)
def test_triple_barrier_matches_reference_on_real_data(name, pt, sl, vertical_bars, side_rule, min_ret, intrabar, every):
    bars = load_sample(name)
    events = bars.index[::every]
    target = ewm_volatility(bars)
    if side_rule == "alternate":
        side = pd.Series(np.where(np.arange(len(bars)) % 2 == 0, 1, -1), index=bars.index)
    elif side_rule == "trend":
        side = pd.Series(np.where(bars.close > bars.close.rolling(50, min_periods=1).mean(), 1, -1), index=bars.index)
    else:
        side = None
    got = triple_barrier(bars, events, (pt, sl), vertical_bars, target, side, min_ret, intrabar)
    want = reference_labels(bars, events, pt, sl, vertical_bars, target, side, min_ret, intrabar)
    assert_same_labels(got, want)
    assert got.label.notna().sum() > 0.9 * len(events)


@st.composite
def labeling_case(draw):
    n = draw(st.integers(2, 120))
    bars = bars_from_walk(draw(st.integers(0, 2**32 - 1)), n, draw(st.sampled_from([None, 0.5, 2.0])))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mask = rng.random(n) < draw(st.sampled_from([1.0, 0.5, 0.1]))
    target = draw(st.sampled_from(["ewm", "scalar", "random"]))
    if target == "ewm":
        target = ewm_volatility(bars, span=10, min_periods=3)
    elif target == "scalar":
        target = draw(st.sampled_from([0.0, 0.005, 0.02, 0.05]))
    else:  # some NaN and zero targets: undetermined unless only the vertical barrier is on
        values = rng.uniform(0.001, 0.06, n)
        values[rng.random(n) < 0.1], values[rng.random(n) < 0.05] = np.nan, 0.0
        target = pd.Series(values, index=bars.index)
    side = draw(st.sampled_from([None, "random"]))
    if side:
        side = pd.Series(rng.choice([-1, 1], n), index=bars.index)
    return dict(bars=bars, events=bars.index[mask], pt=draw(st.sampled_from([0.0, 0.5, 1.0, 2.5])),
                sl=draw(st.sampled_from([0.0, 0.5, 1.0, 2.5])), vertical_bars=draw(st.integers(1, 30)),
                target=target, side=side, min_ret=draw(st.sampled_from([0.0, 0.01])), intrabar=draw(st.booleans()))


@settings(max_examples=150, deadline=None)
@given(case=labeling_case(), cut=st.floats(0, 1))
def test_triple_barrier_matches_reference_on_generated_series(case, cut):
    bars, events = case["bars"], case["events"]
    args = (case["pt"], case["sl"]), case["vertical_bars"], case["target"], case["side"], case["min_ret"], case["intrabar"]
    got = triple_barrier(bars, events, *args)
    want = reference_labels(bars, events, case["pt"], case["sl"], case["vertical_bars"], case["target"], case["side"],
                            case["min_ret"], case["intrabar"])
    assert_same_labels(got, want)
    # Truncated at T, every label known in the part is the full label, and every full label with t1 <= T is known.
    T = int(cut * (len(bars) - 1))
    part_bars = bars.iloc[:T + 1]
    part_events = events[events <= part_bars.index[-1]]
    part = triple_barrier(part_bars, part_events, *args)
    full = got.loc[part_events]
    known = part.label.notna()
    pd.testing.assert_frame_equal(part[known], full[known])
    assert (full.t1[~known].isna() | (full.t1[~known] > part_bars.index[-1])).all()


def test_a_price_exactly_at_a_barrier_touches_it():
    "Ties are exact in binary here (target 1/4): reaching the barrier counts, for both sides and both modes."
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC", name="ts")
    bars = pd.DataFrame({"open": 100.0, "high": 100.0, "low": 100.0, "close": [100.0, 125, 75, 100]}, index=idx)
    first = idx[:1]
    assert triple_barrier(bars.close, first, (1, 1), 3, 0.25).barrier.tolist() == ["pt"]
    assert triple_barrier(bars.close, first, (1, 1), 3, 0.25, side=pd.Series(-1, idx)).barrier.tolist() == ["sl"]
    assert triple_barrier(bars.close, first, (0, 1), 3, 0.25).t1.tolist() == [idx[2]]
    wick = bars.assign(close=100.0, high=[100.0, 125, 100, 100])
    assert triple_barrier(wick, first, (1, 1), 3, 0.25, intrabar=True).barrier.tolist() == ["pt"]
    assert triple_barrier(wick, first, (1, 1), 3, 0.25, intrabar=False).barrier.tolist() == ["vertical"]


# ---------------------------------------------------------------- no lookahead

def perturb_after(bars: pd.DataFrame, t1: pd.Timestamp, seed: int) -> pd.DataFrame:
    "A copy with every bar after `t1` scaled by a random factor (OHLC kept consistent)."
    out = bars.copy()
    after = out.index > t1
    factor = np.exp(np.random.default_rng(seed).normal(0, 0.3, after.sum()))
    for col in ("open", "high", "low", "close"):
        out.loc[after, col] = out.loc[after, col].to_numpy() * factor
    return out


@pytest.mark.parametrize("intrabar", [False, True])
def test_prices_after_t1_never_change_a_label(btc, intrabar):
    kw = dict(pt_sl=(1.5, 1.0), vertical_bars=36, intrabar=intrabar)
    labels = triple_barrier(btc, **kw)
    rng = np.random.default_rng(7)
    picks = [rng.choice(labels.index[labels.barrier == b], 10, replace=False) for b in ("pt", "sl", "vertical")]
    for k, ts in enumerate(np.concatenate(picks)):
        row = labels.loc[ts]
        moved = triple_barrier(perturb_after(btc, row.t1, k), events=pd.DatetimeIndex([ts]), **kw).iloc[0]
        assert (moved.t1, moved.barrier, moved.label, moved.target) == (row.t1, row.barrier, row.label, row.target)
        assert moved.ret == row.ret


@pytest.mark.parametrize("name,side", [("btcusd_1h", False), ("spx_1d", True)])
def test_truncation_leaves_determined_labels_unchanged(name, side):
    bars = load_sample(name)
    primary = pd.Series(np.where(bars.close > bars.close.rolling(20, min_periods=1).mean(), 1, -1), index=bars.index)
    kw = dict(pt_sl=(2.0, 1.0), vertical_bars=20, side=primary if side else None, intrabar=side)
    full = triple_barrier(bars, **kw)
    for T in [25, 100, *np.random.default_rng(3).integers(0, len(bars), 25), len(bars) - 2]:
        part = triple_barrier(bars.iloc[:T + 1], **kw)
        known = part.label.notna()
        pd.testing.assert_frame_equal(part[known], full.iloc[:T + 1][known])
        resolved = full.iloc[:T + 1].t1 <= bars.index[T]  # every label that resolved within T is known in the part
        assert known[resolved].all()


def test_volatility_target_and_regimes_use_past_data_only(btc, spx):
    for bars in (btc, spx):
        vol, tags, ind = ewm_volatility(bars), tag_regimes(bars), regime_indicators(bars)
        ts = np.unique(np.r_[np.arange(0, 300, 7), np.random.default_rng(5).integers(300, len(bars), 150)])
        for t in ts:
            part = bars.iloc[:t + 1]
            np.testing.assert_allclose(ewm_volatility(part).iloc[-1], vol.iloc[t], rtol=1e-12, equal_nan=True)
            assert str(tag_regimes(part).iloc[-1]) == str(tags.iloc[t])
            np.testing.assert_allclose(regime_indicators(part).iloc[-1].to_numpy(), ind.iloc[t].to_numpy(),
                                       rtol=1e-9, equal_nan=True)


# ---------------------------------------------------------------- meta-labels and regimes

def test_meta_labels_are_side_adjusted_outcomes(spx):
    primary = np.sign(spx.close - spx.close.rolling(50).mean())
    events = spx.index[(primary != primary.shift(1)) & (primary != 0) & primary.notna() & primary.shift(1).notna()]
    sided = triple_barrier(spx, events, (1.0, 1.0), 15, side=primary)
    unsided = triple_barrier(spx, events, (1.0, 1.0), 15)
    meta = meta_labels(primary, sided)
    for ts in events:
        row, want = sided.loc[ts], None
        if pd.notna(row.label):  # the bet paid: its take-profit, or a gain at the time limit
            want = int(row.barrier == "pt" or (row.barrier == "vertical" and row.ret > 0))
        assert (pd.isna(meta[ts]) and want is None) or meta[ts] == want
    assert meta_labels(primary, unsided).tolist() == meta.tolist()
    no_bet = primary.copy()
    no_bet[events[:5]] = 0
    assert meta_labels(no_bet, unsided).iloc[:5].isna().all()


def test_regime_rules_bar_by_bar(btc):
    tags, ind = tag_regimes(btc, vol_window=100, volatile_rank=0.9, trending_adx=30), regime_indicators(btc, vol_window=100)
    natr, adx = ind.natr.to_numpy(), ind.adx.to_numpy()
    for t in range(len(btc)):
        window = natr[t - 100:t] if t >= 100 else np.array([np.nan])
        if np.isnan(window).any() or np.isnan(natr[t]) or np.isnan(adx[t]):
            assert pd.isna(tags.iloc[t])
            continue
        rank = sum(v < natr[t] for v in window) / 100
        want = "volatile" if rank >= 0.9 else "trending" if adx[t] >= 30 else "ranging"
        assert tags.iloc[t] == want, t


# ---------------------------------------------------------------- sample weights

def reference_weights(t1: pd.Series, close: pd.Series):
    "Concurrency per bar, uniqueness and normalised return weight per label, by explicit loops over timestamps."
    bars = list(close.index)
    where = {ts: k for k, ts in enumerate(bars)}
    alive = {ts: 0 for ts in bars}
    spans = {}
    for t0, t_exit in t1.dropna().items():
        spans[t0] = bars[where[t0] + 1:where[t_exit] + 1]  # the bars whose return the label uses
        for ts in spans[t0]:
            alive[ts] += 1
    r = {ts: math.log(close[ts] / close[bars[where[ts] - 1]]) for ts in bars[1:]}
    uniq = {t0: sum(1 / alive[ts] for ts in span) / len(span) for t0, span in spans.items()}
    raw = {t0: abs(sum(r[ts] / alive[ts] for ts in span)) for t0, span in spans.items()}
    scale = len(raw) / sum(raw.values())
    return pd.Series(alive), pd.Series(uniq), pd.Series({k: v * scale for k, v in raw.items()})


def check_weights(t1, close):
    conc, uniq, weight = reference_weights(t1, close)
    assert concurrency(t1, close.index).tolist() == conc.tolist()
    got_u, got_w = average_uniqueness(t1, close.index), return_weights(t1, close)
    assert got_u.index.equals(pd.DatetimeIndex(uniq.index)) and got_w.index.equals(got_u.index)
    np.testing.assert_allclose(got_u.to_numpy(), uniq.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(got_w.to_numpy(), weight.to_numpy(), rtol=1e-9)


def test_sample_weights_hand_case():
    bars = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC", name="ts")
    t1 = pd.Series(bars[[2, 3, 5, 5]], index=bars[[0, 1, 3, 4]])  # the 4th shares bar 5 with the 3rd
    close = pd.Series([100, 110, 121, 121, 133.1, 146.41], index=bars)
    assert concurrency(t1, bars).tolist() == [0, 1, 2, 1, 1, 2]
    # A: (1 + 1/2) / 2, B: (1/2 + 1) / 2, C: (1 + 1/2) / 2, D: (1/2) / 1
    np.testing.assert_allclose(average_uniqueness(t1, bars).to_numpy(), [0.75, 0.75, 0.75, 0.5])
    # log returns are all g = log(1.1) here. A: g + g/2, B: g/2 + 0, C: g + g/2, D: g/2 -> sum 4g; scaled to 4 labels
    np.testing.assert_allclose(return_weights(t1, close).to_numpy(), [1.5, 0.5, 1.5, 0.5])
    check_weights(t1, close)


def test_sample_weights_match_reference_on_real_events(btc, spx):
    check_weights(triple_barrier(btc.iloc[:4000], pt_sl=(2, 2), vertical_bars=24).t1, btc.close.iloc[:4000])
    check_weights(triple_barrier(spx, events=spx.index[::3], pt_sl=(1, 1), vertical_bars=10).t1, spx.close)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 80), density=st.sampled_from([1.0, 0.3]),
       max_len=st.integers(1, 20))
def test_sample_weights_match_reference_on_generated_spans(seed, n, density, max_len):
    rng = np.random.default_rng(seed)
    close = bars_from_walk(seed, n, None).close
    starts = np.flatnonzero(rng.random(n - 1) < density)
    if len(starts) == 0:
        return
    ends = np.minimum(starts + rng.integers(1, max_len + 1, len(starts)), n - 1)
    t1 = pd.Series(close.index[ends], index=close.index[starts])
    t1[rng.random(len(t1)) < 0.1] = pd.NaT  # undetermined labels carry no weight
    if t1.notna().any():
        check_weights(t1, close)
