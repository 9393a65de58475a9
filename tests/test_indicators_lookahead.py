"""No lookahead, and warm-up windows that reproduce full history, for every output of default_spec().

Truncation (freqtrade's "lookahead analysis"): computing on the bars up to t must give, at t, exactly the
value computed on all bars — checked at 30 random bars plus the edges (first value, the bar after, last
bar) of every entry, on every bundled sample, and on a multi-timeframe frame. A deliberately peeking
indicator shows the check would catch a leak.

Warm-up: computing on only the last `warmup_bars([entry])` bars ends on the full-history value, within
1e-9 relative (absolute, against the column's median magnitude, for values near 0), at several end bars.
OBV is cumulative from the first bar, so only its changes are compared (documented in indicators.core).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tradingbot.data.samples import load_sample
from tradingbot.data.timeframes import join_timeframes
from tradingbot.indicators import INDICATORS, Indicator, apply_indicators, default_spec, spec_columns, warmup_bars

SAMPLES = ["btcusd_1h", "eurusd_1h", "spx_1d", "es_1m"]
SPEC = default_spec()
MTF_ROLES = {"entry": "1h", "regime": "4h", "context": "1d"}


def check_bars(n: int, first: int, count: int = 30, seed: int = 0) -> list[int]:
    "`count` random bars in [first, n) plus the edges first, first + 1 and n - 1."
    rng = np.random.default_rng(seed)
    return sorted({first, min(first + 1, n - 1), n - 1, *rng.integers(first, n, count).tolist()})


def leaks(df: pd.DataFrame, spec: list[dict], bars: list[int]) -> list[tuple[int, str]]:
    "(bar, column) pairs where computing on df[:t+1] differs at t from computing on all of df."
    full = apply_indicators(df, spec)
    columns = spec_columns(spec, df.attrs.get("timeframes"))
    found = []
    for t in bars:
        cut = apply_indicators(df.iloc[: t + 1], spec)
        for col in columns:
            a, b = cut[col].iloc[-1], full[col].iloc[t]
            if not (a == b or (np.isnan(a) and np.isnan(b))):
                found.append((t, col))
    return found


@pytest.mark.parametrize("name", SAMPLES)
def test_no_output_depends_on_later_bars(name):
    df = load_sample(name)
    for i, entry in enumerate(SPEC):
        first = INDICATORS[entry["name"]].lookback(**{k: v for k, v in entry.items() if k != "name"})
        assert leaks(df, [entry], check_bars(len(df), first, seed=i)) == [], (name, entry)


def test_no_lookahead_across_timeframes():
    "Entries on the 4h and 1d roles of hourly BTC-USD: a row never sees a higher bar before it closed."
    joined = join_timeframes(load_sample("btcusd_1h"), MTF_ROLES)
    spec = ([{"name": "rsi"}, {"name": "supertrend"}] + [{**e, "timeframe": "context"} for e in SPEC]
            + [{"name": "macd", "timeframe": "4h"}, {"name": "fib", "timeframe": "regime"}])
    first = 24 * 80  # the daily Ichimoku cloud needs 78 days
    assert joined.iloc[:10].attrs["timeframes"] == MTF_ROLES  # truncation keeps the layout
    assert leaks(joined, spec, check_bars(len(joined), first)) == []


def test_the_check_catches_a_peeking_indicator(monkeypatch):
    "Ichimoku's chikou span (the close shown 26 bars earlier) reads the future; the check must say so."
    peek = Indicator("chikou", lambda b, src: (np.r_[src[26:], np.full(min(26, len(src)), np.nan)],), {}, ("chikou",),
                     lambda: 0, lambda: 0, {}, None, True, False, "")
    monkeypatch.setitem(INDICATORS, "chikou", peek)
    df = load_sample("spx_1d")
    assert len(leaks(df, [{"name": "chikou"}], check_bars(len(df), 0))) >= 25


def agree(window: np.ndarray, full: np.ndarray, scale: float) -> bool:
    "Equal within 1e-9 relative, or absolute against `scale` near 0; NaN where NaN."
    both_nan = np.isnan(window) & np.isnan(full)
    return bool((both_nan | (np.abs(window - full) <= 1e-9 * np.maximum(np.abs(full), scale))).all())


@pytest.mark.parametrize("name", SAMPLES)
def test_warmup_window_reproduces_full_history(name):
    df = load_sample(name)
    full = apply_indicators(df, SPEC)
    checked, too_long = 0, []
    for i, entry in enumerate(SPEC):
        window = warmup_bars([entry])
        if window > len(df):  # KAMA's 6,636 bars: only BTC-USD is long enough to test it
            too_long.append(entry["name"])
            continue
        ends = [t for t in check_bars(len(df), window - 1, count=4, seed=i) if t + 1 >= window]
        for t in ends:
            tail = apply_indicators(df.iloc[t + 1 - window: t + 1], [entry])
            for col in spec_columns([entry]):
                got, want = tail[col].to_numpy()[-2:], full[col].to_numpy()[t - 1: t + 1]
                cumulative = INDICATORS[entry["name"]].cumulative  # OBV: only its changes are local
                got, want = (np.diff(got), np.diff(want)) if cumulative else (got[-1:], want[-1:])
                scale = float(np.nanmedian(np.abs(full[col])))
                assert agree(got, want, scale), (name, col, t, window, got, want)
                checked += 1
    assert too_long == ([] if name == "btcusd_1h" else ["kama"])
    assert checked >= 4 * 40


def test_warmup_is_not_generous_by_orders_of_magnitude():
    "A window a third the size leaves recursive indicators visibly off: the count is needed, not padding."
    df = load_sample("btcusd_1h")
    full = apply_indicators(df, SPEC)
    for entry in ({"name": "ema", "period": 20}, {"name": "rsi", "period": 14}, {"name": "adx", "period": 14}):
        short = apply_indicators(df.iloc[-(warmup_bars([entry]) // 3):], [entry])
        col = spec_columns([entry])[0]
        assert abs(short[col].iloc[-1] - full[col].iloc[-1]) > 1e-9 * abs(full[col].iloc[-1]) * 1e-3, entry


def test_warmup_window_on_a_multi_timeframe_frame():
    joined = join_timeframes(load_sample("btcusd_1h"), MTF_ROLES)
    spec = [{"name": "rsi"}, {"name": "adx", "timeframe": "4h"}, {"name": "keltner", "timeframe": "context"}]
    window = warmup_bars(spec, MTF_ROLES)
    assert window == 24 * INDICATORS["keltner"].warmup({"period": 20, "atr_period": 10, "mult": 2.0})
    full, tail = apply_indicators(joined, spec), apply_indicators(joined.iloc[-window:], spec)
    for col in spec_columns(spec, MTF_ROLES):
        assert agree(tail[col].to_numpy()[-1:], full[col].to_numpy()[-1:], float(np.nanmedian(np.abs(full[col])))), col
