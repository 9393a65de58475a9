"""Backtester benchmark: bars/s of one backtest on 1M bars and combinations/s of a 210-combination sweep on 100k bars,
each next to vectorbt's `Portfolio.from_signals` on the same signals, measured in the same run — with all-in sizing
and with `sizing="risk"` (the paper and live sizing rules, run inside the loop); and the first backtest in a fresh
process (numba's cache filled by `make setup`).

Prints figures only (DESIGN §9: tests never assert on wall time). Run: `.venv/bin/python benchmarks/bench_backtest.py`.
Every figure is the best of a few runs after a warm-up call (JIT compilation, numba's cache). vectorbt gets numpy
arrays: with a tz-aware index under pandas 3 it spends seconds converting timestamps, which would not be a fair
measure of its simulator. Both sides are timed up to the result object with its records (our orders/fills/trades
frames, like vectorbt's, are built on first use). Same signals, fees, spread + slippage and stop-loss on both sides;
vectorbt fills at the signal bar's close (its default), ours at the next bar's open (our default).
"""
from __future__ import annotations


import subprocess
import sys
import textwrap

import numba
import numpy as np
import pandas as pd
import talib
import vectorbt as vbt

from _common import best_of, machine_line

from tradingbot.data.synthetic import synthetic_bars
from tradingbot.execution.fills import FillConfig
from tradingbot.validation.backtest import backtest, sweep

N_BARS, N_SWEEP_BARS, RUNS = 1_000_000, 100_000, 7
COSTS = FillConfig(maker_fee_pct=0.02, taker_fee_pct=0.1, spread_pct=0.01, slippage_pct=0.02)  # the full fill model
SL_PCT = 2.0


def rules(close: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    "Two rules on the same bars: RSI-2 mean reversion (trades often) and a 50/200 SMA cross (trades rarely)."
    rsi = talib.RSI(close, 2)
    fast, slow = talib.SMA(close, 50), talib.SMA(close, 200)
    above = fast > slow
    cross_up = above & ~np.roll(above, 1)
    cross_down = ~above & np.roll(above, 1)
    cross_up[0] = cross_down[0] = False
    return {"RSI-2 <10/>90": (rsi < 10, rsi > 90), "SMA 50/200 cross": (cross_up, cross_down)}


def vbt_single(bars: pd.DataFrame, entries: np.ndarray, exits: np.ndarray):
    "vectorbt with the same costs and stop (fees, slippage as spread/2 + slippage, close fills)."
    return vbt.Portfolio.from_signals(bars.close.to_numpy(), entries, exits, open=bars.open.to_numpy(),
                                      high=bars.high.to_numpy(), low=bars.low.to_numpy(), fees=0.001,
                                      slippage=0.0001 / 2 + 0.0002, sl_stop=SL_PCT / 100, init_cash=1_000.0)


def bench_single(sizing: str) -> None:
    bars = synthetic_bars(N_BARS, "1m", seed=0)
    print(f"\n== one backtest, {N_BARS:,} one-minute bars, fees + spread + slippage + {SL_PCT:g} % stop-loss, "
          f"sizing={sizing!r}")
    print(f"{'rule':18s} {'trades':>7s} {'ours ms':>9s} {'ours Mbars/s':>13s} {'vbt ms':>9s} {'vbt Mbars/s':>12s} "
          f"{'ratio':>6s}")
    for name, (entries, exits) in rules(bars.close.to_numpy()).items():
        ent, ext = pd.Series(entries, index=bars.index), pd.Series(exits, index=bars.index)
        ours_s, res = best_of(lambda: backtest(bars, ent, ext, sl_pct=SL_PCT, fill=COSTS, sizing=sizing), RUNS,
                              warmup=True)
        vbt_s, pf = best_of(lambda: vbt_single(bars, entries, exits), RUNS, warmup=True)
        print(f"{name:18s} {res.stats['n_trades']:7d} {ours_s * 1e3:9.1f} {N_BARS / ours_s / 1e6:13.1f} "
              f"{vbt_s * 1e3:9.1f} {N_BARS / vbt_s / 1e6:12.1f} {vbt_s / ours_s:5.1f}x")
        assert res.stats["n_trades"] > 0 and len(pf.orders.values) > 0


def sweep_signals(close: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
    "RSI-2 style grid: window 2..8 x entry threshold 5..30 x exit threshold 70..90 = 210 combinations."
    grid, entries, exits = [], [], []
    for window in range(2, 9):
        rsi = talib.RSI(close, window)
        for low in range(5, 35, 5):
            for high in range(70, 95, 5):
                grid.append((window, low, high))
                entries.append(rsi < low)
                exits.append(rsi > high)
    return grid, np.column_stack(entries), np.column_stack(exits)


def bench_sweep(sizing: str) -> None:
    bars = synthetic_bars(N_SWEEP_BARS, "1m", seed=1)
    grid, entries, exits = sweep_signals(bars.close.to_numpy())
    columns = pd.MultiIndex.from_tuples(grid, names=["window", "low", "high"])
    ent, ext = pd.DataFrame(entries, bars.index, columns), pd.DataFrame(exits, bars.index, columns)
    n = len(grid)
    print(f"\n== sweep, {n} combinations x {N_SWEEP_BARS:,} bars ({numba.get_num_threads()} numba threads), "
          f"sizing={sizing!r}")
    ours_s, stats = best_of(lambda: sweep(bars, ent, ext, sl_pct=SL_PCT, fill=COSTS, sizing=sizing), RUNS,
                            warmup=True)
    close = bars.close.to_numpy()[:, None]
    ohlc = {k: bars[k].to_numpy()[:, None] for k in ("open", "high", "low")}
    vbt_s, pf = best_of(lambda: vbt.Portfolio.from_signals(close, entries, exits, **ohlc, fees=0.001,
                                                           slippage=0.0001 / 2 + 0.0002, sl_stop=SL_PCT / 100,
                                                           init_cash=1_000.0), 3, warmup=True)
    print(f"{'':18s} {'seconds':>9s} {'combinations/s':>15s} {'Mbars/s':>9s}")
    for label, secs in (("ours (sweep)", ours_s), ("vectorbt", vbt_s)):
        print(f"{label:18s} {secs:9.3f} {n / secs:15,.0f} {n * N_SWEEP_BARS / secs / 1e6:9.1f}")
    print(f"ratio: {vbt_s / ours_s:.1f}x  (trades per combination, median: {int(stats.n_trades.median())})")
    assert len(stats) == n and len(pf.orders.values) > 0


COLD = textwrap.dedent("""
    import time
    t0 = time.perf_counter()
    import pandas as pd
    import talib
    from tradingbot.data.samples import load_sample
    from tradingbot.validation.backtest import backtest
    btc = load_sample("btcusd_1h")
    t1 = time.perf_counter()
    rsi = talib.RSI(btc.close.to_numpy(), 2)
    backtest(btc, pd.Series(rsi < 10, index=btc.index), pd.Series(rsi > 70, index=btc.index), sl_pct=2)
    t2 = time.perf_counter()
    print(f"{t1 - t0:.2f} {t2 - t1:.2f}")
""")


def bench_cold_start() -> None:
    "A first backtest in a fresh process: imports, then RSI-2 on BTC hourly (kernels from numba's cache)."
    out = subprocess.run([sys.executable, "-c", COLD], capture_output=True, text=True, check=True).stdout.split()
    imports, first = map(float, out)
    print(f"\n== first backtest in a fresh process (numba cache warmed by make setup)")
    print(f"imports {imports:.2f} s, first backtest {first:.2f} s, total {imports + first:.2f} s (goal <= 3 s)")


if __name__ == "__main__":
    print(machine_line(numba=numba.__version__, vectorbt=vbt.__version__))
    bench_cold_start()
    for sizing in ("cash", "risk"):
        bench_single(sizing)
        bench_sweep(sizing)
