"""Indicator parity: every output of `apply_indicators` against TA-Lib, TA-Lib compositions or plain-Python references.

Each reference below is written here, independently of `tradingbot.indicators`: direct TA-Lib calls for
TA-Lib-backed outputs, the documented formulas over TA-Lib pieces for composed ones, and plain Python
for the numba kernels (SuperTrend, rolling VWAP bands, Fibonacci swing levels). Values must agree to
1e-9 (relative to the value, or to the column's median magnitude for values near 0) and NaN must sit
at exactly the same bars, so warm-up lengths are checked too. Runs on all four bundled samples.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib
from numpy.lib.stride_tricks import sliding_window_view

from tradingbot.data.samples import load_sample
from tradingbot.indicators import INDICATORS, apply_indicators, default_spec, spec_columns

SAMPLES = ["btcusd_1h", "eurusd_1h", "spx_1d", "es_1m"]
FIB = (0.236, 0.382, 0.5, 0.618, 0.786)


def assert_matches(actual: np.ndarray, expected: np.ndarray, what: str, rtol: float = 1e-9) -> None:
    "Same NaN bars; elsewhere |a - e| <= rtol * max(|e|, median |e|)."
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    nan_a, nan_e = np.isnan(actual), np.isnan(expected)
    moved = np.flatnonzero(nan_a != nan_e)
    assert moved.size == 0, f"{what}: NaN at other bars, first {moved[:5]} (NaN counts {nan_a.sum()} vs {nan_e.sum()})"
    ok = ~nan_e
    scale = np.maximum(np.abs(expected[ok]), np.median(np.abs(expected[ok])) if ok.any() else 0.0)
    err = np.abs(actual[ok] - expected[ok])
    worst = int(np.argmax(err - rtol * scale)) if ok.any() else 0
    assert (err <= rtol * scale).all(), f"{what}: differs by {err[worst]:.3g} at valid bar {worst}"


def arrays(df: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(df[c].to_numpy(dtype=float) for c in ("open", "high", "low", "close", "volume"))


def talib_reference(df: pd.DataFrame) -> dict[str, np.ndarray]:
    "The TA-Lib-backed outputs of default_spec(), by direct TA-Lib calls with the customary parameters."
    o, h, l, c, v = arrays(df)
    macd, stoch, bb = talib.MACD(c, 12, 26, 9), talib.STOCH(h, l, c, 14, 3, 0, 3, 0), talib.BBANDS(c, 20, 2, 2, 0)
    return {
        "sma_20": talib.SMA(c, 20), "ema_20": talib.EMA(c, 20),
        "macd_12_26_9": macd[0], "macd_signal_12_26_9": macd[1], "macd_hist_12_26_9": macd[2],
        "rsi_14": talib.RSI(c, 14), "stoch_k_14_3_3": stoch[0], "stoch_d_14_3_3": stoch[1],
        "willr_14": talib.WILLR(h, l, c, 14), "mfi_14": talib.MFI(h, l, c, v, 14), "roc_10": talib.ROC(c, 10),
        "atr_14": talib.ATR(h, l, c, 14), "natr_14": talib.NATR(h, l, c, 14),
        "bb_upper_20_2": bb[0], "bb_middle_20_2": bb[1], "bb_lower_20_2": bb[2],
        "obv": talib.OBV(c, v), "kama_10": talib.KAMA(c, 10), "adx_14": talib.ADX(h, l, c, 14),
    }


def composed_reference(df: pd.DataFrame) -> dict[str, np.ndarray]:
    "The documented formulas over TA-Lib pieces: HMA, Donchian, Keltner, %B, Ichimoku."
    o, h, l, c, v = arrays(df)
    upper, _, lower = talib.BBANDS(c, 20, 2, 2, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        pctb = np.where(upper == lower, np.nan, (c - lower) / (upper - lower))
    ema, atr = talib.EMA(c, 20), talib.ATR(h, l, c, 10)
    tenkan, kijun, span_b = talib.MIDPRICE(h, l, 9), talib.MIDPRICE(h, l, 26), talib.MIDPRICE(h, l, 52)
    span_a = (tenkan + kijun) / 2
    return {
        "hma_9": talib.WMA(2 * talib.WMA(c, 4) - talib.WMA(c, 9), 3),
        "donchian_upper_20": talib.MAX(h, 20), "donchian_middle_20": talib.MIDPRICE(h, l, 20),
        "donchian_lower_20": talib.MIN(l, 20),
        "keltner_upper_20_10_2": ema + 2 * atr, "keltner_middle_20_10_2": ema, "keltner_lower_20_10_2": ema - 2 * atr,
        "pctb_20_2": pctb,
        "ichimoku_tenkan_9_26_52": tenkan, "ichimoku_kijun_9_26_52": kijun,
        "ichimoku_span_a_9_26_52": span_a, "ichimoku_span_b_9_26_52": span_b,
        "ichimoku_cloud_a_9_26_52": pd.Series(span_a).shift(26).to_numpy(),
        "ichimoku_cloud_b_9_26_52": pd.Series(span_b).shift(26).to_numpy(),
    }


def supertrend_reference(h, l, c, period: int, mult: float) -> tuple[np.ndarray, np.ndarray]:
    "TradingView's pine_supertrend in plain Python, direction +1 up / -1 down, on TA-Lib's ATR."
    atr = talib.ATR(h, l, c, period)
    line, direction = np.full(len(c), np.nan), np.full(len(c), np.nan)
    up = None
    for i in range(len(c)):
        if math.isnan(atr[i]):
            continue
        basic_upper, basic_lower = (h[i] + l[i]) / 2 + mult * atr[i], (h[i] + l[i]) / 2 - mult * atr[i]
        if up is None:
            upper, lower, up = basic_upper, basic_lower, False
        else:
            upper = basic_upper if basic_upper < upper or c[i - 1] > upper else upper
            lower = basic_lower if basic_lower > lower or c[i - 1] < lower else lower
            up = c[i] >= lower if up else c[i] > upper
        line[i], direction[i] = (lower, 1.0) if up else (upper, -1.0)
    return line, direction


def vwap_reference(h, l, c, v, period: int, nbdev: float) -> tuple[np.ndarray, ...]:
    "Rolling VWAP of (H+L+C)/3 and volume-weighted population std bands, each window in two passes."
    tp = (h + l + c) / 3
    windows, weights = sliding_window_view(tp, period), sliding_window_view(v, period)
    volume = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (windows * weights).sum(axis=1) / volume
        sd = np.sqrt((weights * (windows - mean[:, None]) ** 2).sum(axis=1) / volume)
    pad = np.full(period - 1, np.nan)
    return tuple(np.r_[pad, x] for x in (mean, mean + nbdev * sd, mean - nbdev * sd))


def fib_reference(h, l, period: int, k: int) -> list[np.ndarray]:
    "Latest swing high/low confirmed k bars later, expiring after `period` bars, and the retracement levels."
    n = len(h)
    out = [np.full(n, np.nan) for _ in range(2 + len(FIB))]
    hi_at = lo_at = None
    for t in range(n):
        s = t - k
        if s >= k:
            if h[s] > max(h[s - k:s]) and h[s] >= max(h[s + 1:t + 1]):
                hi_at = s
            if l[s] < min(l[s - k:s]) and l[s] <= min(l[s + 1:t + 1]):
                lo_at = s
        if hi_at is None or lo_at is None or hi_at <= t - period or lo_at <= t - period:
            continue
        top, bottom = h[hi_at], l[lo_at]
        out[0][t], out[1][t] = top, bottom
        for j, r in enumerate(FIB):
            out[2 + j][t] = top - r * (top - bottom) if hi_at >= lo_at else bottom + r * (top - bottom)
    return out


def kernel_reference(df: pd.DataFrame) -> dict[str, np.ndarray]:
    "SuperTrend(10, 3), VWAP(20, 2) and Fibonacci(100, 5) in plain Python / numpy."
    o, h, l, c, v = arrays(df)
    line, direction = supertrend_reference(h, l, c, 10, 3.0)
    vwap = vwap_reference(h, l, c, v, 20, 2.0)
    fib = fib_reference(h, l, 100, 5)
    names = ["high", "low", "236", "382", "500", "618", "786"]
    return {"supertrend_10_3": line, "supertrend_dir_10_3": direction,
            "vwap_20_2": vwap[0], "vwap_upper_20_2": vwap[1], "vwap_lower_20_2": vwap[2],
            **{f"fib_{name}_100_5": x for name, x in zip(names, fib)}}


@pytest.fixture(scope="module", params=SAMPLES)
def sample(request):
    df = load_sample(request.param)
    return request.param, df, apply_indicators(df, default_spec())


def test_references_cover_every_output(sample):
    _, df, _ = sample
    covered = {**talib_reference(df[:300]), **composed_reference(df[:300]), **kernel_reference(df[:300])}
    assert sorted(covered) == sorted(spec_columns(default_spec()))


@pytest.mark.parametrize("reference", [talib_reference, composed_reference, kernel_reference])
def test_outputs_match_references(sample, reference):
    name, df, out = sample
    for column, expected in reference(df).items():
        assert_matches(out[column].to_numpy(), expected, f"{name} {column}")


def test_warmup_nan_counts_are_the_registered_lookbacks(sample):
    "TA-Lib-style: every indicator's first full row is at its lookback (fib: no earlier, being data-dependent)."
    name, _, out = sample
    for entry in default_spec():
        ind = INDICATORS[entry["name"]]
        params = {k: v for k, v in entry.items() if k != "name"}
        leading = max(int(np.argmax(~np.isnan(out[col].to_numpy()))) for col in spec_columns([entry]))
        if entry["name"] == "fib":
            assert leading >= ind.lookback(**params), name
        else:
            assert leading == ind.lookback(**params), f"{name} {entry['name']}: first value at {leading}"


def test_parameters_and_sources_reach_talib():
    "Non-default parameters and sources change the call exactly as written."
    df = load_sample("spx_1d")
    o, h, l, c, v = arrays(df)
    hlc3, ohlc4 = (h + l + c) / 3, (o + h + l + c) / 4
    spec = [{"name": "rsi", "period": 2, "source": "hlc3"}, {"name": "macd", "fast": 5, "slow": 35, "signal": 5},
            {"name": "bb", "period": 10, "nbdev": 1.5, "source": "ohlc4"}, {"name": "stoch", "fastk": 5, "slowd": 4},
            {"name": "ema", "period": 1}, {"name": "keltner", "period": 10, "atr_period": 5, "mult": 1.5},
            {"name": "supertrend", "period": 7, "mult": 2}, {"name": "vwap", "period": 5, "nbdev": 1},
            {"name": "fib", "period": 30, "k": 2}, {"name": "hma", "period": 16, "source": "open"}]
    out = apply_indicators(df, spec)
    ema, atr = talib.EMA(c, 10), talib.ATR(h, l, c, 5)
    expected = {
        "rsi_2_hlc3": talib.RSI(hlc3, 2), "macd_signal_5_35_5": talib.MACD(c, 5, 35, 5)[1],
        "bb_lower_10_1.5_ohlc4": talib.BBANDS(ohlc4, 10, 1.5, 1.5, 0)[2],
        "stoch_d_5_3_4": talib.STOCH(h, l, c, 5, 3, 0, 4, 0)[1], "ema_1": talib.EMA(c, 1),
        "keltner_upper_10_5_1.5": ema + 1.5 * atr,
        "supertrend_7_2": supertrend_reference(h, l, c, 7, 2.0)[0],
        "vwap_upper_5_1": vwap_reference(h, l, c, v, 5, 1.0)[1],
        "fib_618_30_2": fib_reference(h, l, 30, 2)[5],
        "hma_16_open": talib.WMA(2 * talib.WMA(o, 8) - talib.WMA(o, 16), 4),
    }
    for column, values in expected.items():
        assert_matches(out[column].to_numpy(), values, column)
