"""Property test: a multi-timeframe join never shows a higher bar before it closes, and never a stale one.

For random 1m bars with random gaps, every row of `join_timeframes` and every higher role must show
exactly the latest *complete* higher bar whose close is at or before the row's close. The expected bar
is found by brute force from the raw minutes (no call into the code under test), so the test also checks
`resample`'s completeness rule and its aggregated values.
"""
import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingbot.data.timeframes import join_timeframes, resample, timeframe_delta

MINUTE = pd.Timedelta(minutes=1)
START = pd.Timestamp("2024-03-01 22:00", tz="UTC")  # a Friday evening: the 1d role crosses midnights
SPECS = [
    {"entry": "5m", "regime": "15m", "context": "1h"},
    {"entry": "1m", "slow": "15m", "daily": "1d"},
    {"entry": "15m", "context": "4h"},
]


@st.composite
def minute_bars(draw):
    "Strictly increasing 1m open times with random gaps (mostly 1 minute, some long), and random valid prices."
    steps = draw(st.lists(st.one_of(st.just(1), st.integers(1, 7), st.integers(1, 400)), min_size=1, max_size=600))
    offset = draw(st.integers(0, 24 * 60 - 1))
    ts = START + MINUTE * (offset + np.cumsum([0, *steps[1:]]))
    n = len(ts)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 100 + rng.normal(0, 1, n).cumsum()
    open_ = close + rng.normal(0, 0.5, n)
    bars = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + rng.random(n),
                         "low": np.minimum(open_, close) - rng.random(n), "close": close,
                         "volume": rng.integers(0, 50, n).astype("float64")},
                        index=pd.DatetimeIndex(ts, name="ts"))
    return bars


def complete_bins(minutes: pd.DataFrame, step: pd.Timedelta) -> list:
    "Open times of the `step` bins that hold a minute and are over: later minutes exist or the bin's last minute ends it."
    last_minute = minutes.index[-1]
    out = []
    for b in sorted(set(minutes.index.floor(step))):
        in_bin = minutes.index[(minutes.index >= b) & (minutes.index < b + step)]
        if last_minute >= b + step or in_bin[-1] + MINUTE == b + step:
            out.append(b)
    return out


def expected_bar(bins: list, step: pd.Timedelta, row_close: pd.Timestamp):
    "The latest of `bins` that closes at or before `row_close` (None if none has)."
    closed = [b for b in bins if b + step <= row_close]
    return closed[-1] if closed else None


@settings(max_examples=60, deadline=None)
@given(bars=minute_bars(), spec=st.sampled_from(SPECS))
def test_join_shows_latest_closed_bar(bars, spec):
    joined = join_timeframes(bars, spec, base_timeframe="1m")
    entry, *higher = spec
    entry_step = timeframe_delta(spec[entry])
    assert list(joined.index) == complete_bins(bars, entry_step)
    for role in higher:
        step = timeframe_delta(spec[role])
        bins = complete_bins(bars, step)
        for ts, row in zip(joined.index, joined.to_dict("records")):
            row_close = ts + entry_step
            shown = row[f"{role}_ts"]
            want = expected_bar(bins, step, row_close)
            if want is None:
                assert pd.isna(shown) and pd.isna(row[f"{role}_close"])
                continue
            assert shown + step <= row_close  # never before its close
            assert shown == want  # and never staler than necessary
            in_bin = bars.loc[(bars.index >= want) & (bars.index < want + step)]
            assert row[f"{role}_open"] == in_bin.open.iloc[0]
            assert row[f"{role}_high"] == in_bin.high.max()
            assert row[f"{role}_low"] == in_bin.low.min()
            assert row[f"{role}_close"] == in_bin.close.iloc[-1]
            assert np.isclose(row[f"{role}_volume"], in_bin.volume.sum())


@settings(max_examples=40, deadline=None)
@given(bars=minute_bars())
def test_dict_form_matches_base_form(bars):
    spec = SPECS[0]
    frames = {role: resample(bars, tf, source_timeframe="1m") for role, tf in spec.items()}
    pd.testing.assert_frame_equal(join_timeframes(frames, spec), join_timeframes(bars, spec, base_timeframe="1m"))
