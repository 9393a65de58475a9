"""Indicator benchmark: apply_indicators(default_spec()) on 1M bars against the raw TA-Lib calls, and the numba kernels.

Prints figures only (DESIGN §9: tests never assert on wall time). Run: `.venv/bin/python benchmarks/bench_indicators.py`.
The peers are the same TA-Lib calls (and kernel calls, and numpy glue) made directly on numpy arrays in
the same run. Two sums are printed: every raw call made in one pass keeping its outputs (the work a
frame of all the columns implies: ~360 MB of fresh arrays whose page faults are part of the cost), and
the sum of each indicator timed alone (its outputs freed between runs, so memory is reused warm). The
ratio is apply_indicators' time over each (goal <= 1.25). Timings alternate between the contenders and
keep the best of several runs, since the machine may be shared. Kernels are timed writing a fresh
`np.empty` block, as the registry calls them, and into a reused block (compute only); goal >= 100 M rows/s.
"""
from __future__ import annotations

import time

import numba
import numpy as np
import pandas as pd
import talib

from _common import machine_line

from tradingbot.data.synthetic import synthetic_bars
from tradingbot.indicators import (FIB_RATIOS, INDICATORS, apply_indicators, default_spec, fib_levels_nb,
                                   supertrend_nb, vwap_bands_nb)

N_BARS = 1_000_000
RUNS = 7


def best(*fns, runs: int = RUNS) -> list[float] | float:
    "Best wall time of each of `fns` over `runs` rounds, the contenders alternating within a round."
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, record in zip(fns, times):
            t = time.perf_counter()
            fn()
            record.append(time.perf_counter() - t)
    return [min(t) for t in times] if len(fns) > 1 else min(times[0])


def raw_calls(o, h, l, c, v) -> dict:
    "Each default_spec() indicator as direct TA-Lib / kernel / numpy calls on arrays, nothing else."
    n = len(c)

    def hma():
        return talib.WMA(2 * talib.WMA(c, 4) - talib.WMA(c, 9), 3)

    def keltner():
        mid, width = talib.EMA(c, 20), 2 * talib.ATR(h, l, c, 10)
        return mid + width, mid, mid - width

    def pctb():
        upper, _, lower = talib.BBANDS(c, 20, 2, 2, 0)
        return (c - lower) / (upper - lower)

    def ichimoku():
        tenkan, kijun, span_b = talib.MIDPRICE(h, l, 9), talib.MIDPRICE(h, l, 26), talib.MIDPRICE(h, l, 52)
        span_a = (tenkan + kijun) / 2
        lag = np.full(26, np.nan)
        return tenkan, kijun, span_a, span_b, np.r_[lag, span_a[:-26]], np.r_[lag, span_b[:-26]]

    return {
        "sma": lambda: talib.SMA(c, 20), "ema": lambda: talib.EMA(c, 20), "macd": lambda: talib.MACD(c, 12, 26, 9),
        "rsi": lambda: talib.RSI(c, 14), "stoch": lambda: talib.STOCH(h, l, c, 14, 3, 0, 3, 0),
        "willr": lambda: talib.WILLR(h, l, c, 14), "mfi": lambda: talib.MFI(h, l, c, v, 14),
        "roc": lambda: talib.ROC(c, 10), "atr": lambda: talib.ATR(h, l, c, 14), "natr": lambda: talib.NATR(h, l, c, 14),
        "bb": lambda: talib.BBANDS(c, 20, 2, 2, 0), "obv": lambda: talib.OBV(c, v), "kama": lambda: talib.KAMA(c, 10),
        "adx": lambda: talib.ADX(h, l, c, 14), "hma": hma,
        "donchian": lambda: (talib.MAX(h, 20), talib.MIDPRICE(h, l, 20), talib.MIN(l, 20)),
        "keltner": keltner, "pctb": pctb, "ichimoku": ichimoku,
        "supertrend": lambda: supertrend_nb(h, l, c, talib.ATR(h, l, c, 10), 3.0, np.empty((2, n))),
        "vwap": lambda: vwap_bands_nb(h, l, c, v, 20, 2.0, np.empty((3, n))),
        "fib": lambda: fib_levels_nb(h, l, talib.MAX(h, 5), talib.MIN(l, 5), 5, 100, FIB_RATIOS, np.empty((7, n))),
    }


def bench_apply(bars: pd.DataFrame) -> None:
    o, h, l, c, v = (bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    raw = raw_calls(o, h, l, c, v)
    spec = default_spec()
    assert [e["name"] for e in spec] == list(raw), "raw_calls must cover default_spec() in order"
    talib_only = spec[:14]  # the indicators TA-Lib has as such; the rest are compositions and kernels
    for label, entries in (("full default_spec()", spec), ("TA-Lib-backed entries", talib_only)):
        calls = [raw[e["name"]] for e in entries]
        one_pass, applied = best(lambda: [call() for call in calls], lambda: apply_indicators(bars, entries))
        alone = sum(best(call) for call in calls)
        columns = apply_indicators(bars, entries).shape[1] - 5
        print(f"\n{label} ({len(entries)} entries, {columns} columns) on {len(bars):,} bars:")
        print(f"  apply_indicators {applied * 1e3:7.1f} ms")
        print(f"  raw calls, one pass keeping outputs {one_pass * 1e3:7.1f} ms -> ratio {applied / one_pass:.2f} "
              f"(goal <= 1.25)")
        print(f"  raw calls, each timed alone, summed {alone * 1e3:7.1f} ms -> ratio {applied / alone:.2f}")
    print(f"\n{'indicator':<12}{'raw ms':>9}{'apply ms':>10}{'ratio':>7}   (one entry at a time)")
    for entry in spec:
        raw_s, apply_s = best(raw[entry["name"]], lambda: apply_indicators(bars, [entry]))
        print(f"{entry['name']:<12}{raw_s * 1e3:>9.2f}{apply_s * 1e3:>10.2f}{apply_s / raw_s:>7.2f}")


def bench_kernels(bars: pd.DataFrame) -> None:
    o, h, l, c, v = (bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    n, atr, highest, lowest = len(c), talib.ATR(h, l, c, 10), talib.MAX(h, 5), talib.MIN(l, 5)
    kernels = {  # name: (call writing into `out`, output rows)
        "vwap_bands_nb(20, 2)": (lambda out: vwap_bands_nb(h, l, c, v, 20, 2.0, out), 3),
        "supertrend_nb(10, 3)": (lambda out: supertrend_nb(h, l, c, atr, 3.0, out), 2),
        "fib_levels_nb(100, 5)": (lambda out: fib_levels_nb(h, l, highest, lowest, 5, 100, FIB_RATIOS, out), 7),
    }
    print(f"\nnumba kernels on {n:,} bars, best of {RUNS} (goal >= 100 M rows/s):")
    print(f"{'kernel':<24}{'fresh block':>16}{'reused block':>16}{'output MB':>11}")
    for name, (call, rows) in kernels.items():
        reused_block = np.zeros((rows, n))
        fresh, reused = best(lambda: call(np.empty((rows, n))), lambda: call(reused_block))
        print(f"{name:<24}{n / fresh / 1e6:>10.0f} M/s{n / reused / 1e6:>10.0f} M/s{rows * n * 8 / 1e6:>11.0f}")
    copy = best(lambda: np.empty((7, n)).fill(1.0))
    print(f"(memory: filling a fresh 7-row block takes {copy * 1e3:.1f} ms here, {7 * n * 8 / copy / 1e9:.1f} GB/s)")


def bench_triple_barrier(bars: pd.DataFrame) -> None:
    "Triple-barrier labelling at a 50-bar horizon (the labels the ML pipeline trains on)."
    from tradingbot.labeling import ewm_volatility, triple_barrier
    target = ewm_volatility(bars.close)
    triple_barrier(bars.close.iloc[:1000], vertical_bars=50, target=target.iloc[:1000])  # JIT / cache load
    t = best(lambda: triple_barrier(bars.close, vertical_bars=50, target=target), runs=3)
    print(f"\ntriple_barrier, every bar an event, 50-bar horizon, pt_sl (1, 1): {len(bars) / t / 1e6:.2f} M events/s "
          f"({t * 1e3:.0f} ms; more in benchmarks/bench_labeling.py)")


def main() -> None:
    print(machine_line(numpy=np.__version__, pandas=pd.__version__, numba=numba.__version__,
                       **{"TA-Lib": f"{talib.__ta_version__.decode().split()[0]} (python talib {talib.__version__})"}))
    bars = synthetic_bars(N_BARS, "1m", seed=0)
    first = time.perf_counter()
    apply_indicators(bars.iloc[:1000], default_spec()[-3:])
    print(f"first call (numba cache load or JIT): {time.perf_counter() - first:.2f} s; "
          f"{len(INDICATORS)} indicators registered; timings best of {RUNS}")
    bench_apply(bars)
    bench_kernels(bars)
    bench_triple_barrier(bars)


if __name__ == "__main__":
    main()
