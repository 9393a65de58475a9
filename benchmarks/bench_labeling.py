"""Labeling benchmark: triple-barrier events/s at a 50-bar horizon on 1M bars, sample-weight and regime rows/s.

Prints figures only (DESIGN §9: tests never assert on wall time); best of a few runs after a warm-up
call (numba JIT or cache load). The peer is the per-event pandas loop of AFML snippet 3.2
(`applyPtSlOnT1`), timed on a subset and checked to give the same exits.
Run: `.venv/bin/python benchmarks/bench_labeling.py`.
"""
from __future__ import annotations


import numba
import numpy as np
import pandas as pd

from _common import best_of, machine_line

from tradingbot.data.synthetic import synthetic_bars
from tradingbot.labeling import ewm_volatility, tag_regimes, triple_barrier
from tradingbot.sample_weights import average_uniqueness, concurrency, return_weights

N_BARS = 1_000_000
HORIZON = 50
PT_SL = (1.0, 1.0)
RUNS = 3
PEER_EVENTS = 2_000


def afml_loop(close: pd.Series, events: pd.DatetimeIndex, target: pd.Series) -> pd.Series:
    "AFML snippet 3.2 style: per event, slice the path in pandas and find the first touch of each barrier."
    pos = close.index.get_indexer(events)
    t1 = {}
    for ts, i in zip(events, pos):
        path = close.iloc[i + 1:i + HORIZON + 1]
        if len(path) < HORIZON:
            continue
        r = path / close.iloc[i] - 1
        width = target[ts]
        touches = [r.index[r >= PT_SL[0] * width].min(), r.index[r <= -PT_SL[1] * width].min(), path.index[-1]]
        t1[ts] = min(t for t in touches if not pd.isna(t))
    return pd.Series(t1)


def row(what: str, n: int, seconds: float) -> None:
    print(f"{what:<52}{n:>11,}{seconds:>10.3f}{n / seconds / 1e6:>12.2f}")


def main() -> None:
    print(machine_line(numpy=np.__version__, pandas=pd.__version__, numba=numba.__version__))
    bars = synthetic_bars(N_BARS, "1m", seed=0)
    first_s, _ = best_of(lambda: triple_barrier(bars.iloc[:1000], vertical_bars=HORIZON, intrabar=True), 1)
    print(f"first call (JIT or cache load): {first_s:.2f} s")
    target_s, target = best_of(lambda: ewm_volatility(bars), RUNS)
    sparse = bars.index[np.sort(np.random.default_rng(0).choice(N_BARS, N_BARS // 20, replace=False))]

    print(f"\n{N_BARS:,} 1m bars, horizon {HORIZON} bars, pt_sl {PT_SL}, best of {RUNS}")
    print(f"{'':<52}{'rows':>11}{'s':>10}{'M rows/s':>12}")
    row("ewm_volatility (target)", N_BARS, target_s)
    results = {}
    for name, events, pt_sl, intrabar in [("every bar", None, PT_SL, False), ("every bar", None, PT_SL, True),
                                          ("every bar, vertical only", None, (0, 0), False),
                                          ("sparse 5 % of bars", sparse, PT_SL, False),
                                          ("sparse 5 % of bars", sparse, PT_SL, True)]:
        mode = "intrabar" if intrabar else "closes"
        secs, labels = best_of(lambda: triple_barrier(bars, events, pt_sl, HORIZON, target, intrabar=intrabar), RUNS)
        results[(name, mode)] = labels
        row(f"triple_barrier, {name}, {mode}", len(labels), secs)
    labels = results[("every bar", "closes")]
    for name, fn in [("concurrency", lambda: concurrency(labels.t1, bars.index)),
                     ("average_uniqueness", lambda: average_uniqueness(labels.t1, bars.index)),
                     ("return_weights", lambda: return_weights(labels.t1, bars.close))]:
        secs, _ = best_of(fn, RUNS)
        row(f"{name} (1M labels)", len(labels), secs)
    secs, _ = best_of(lambda: tag_regimes(bars), RUNS)
    row("tag_regimes (vol_window 252)", N_BARS, secs)

    peer_events = sparse[sparse >= bars.index[100]][:PEER_EVENTS]  # past the target's warm-up (NaN: no barriers)
    peer_s, peer = best_of(lambda: afml_loop(bars.close, peer_events, target), 1)
    ours = results[("sparse 5 % of bars", "closes")].t1.loc[peer.index]
    assert (ours == peer).all(), "the AFML-style loop and triple_barrier disagree"
    ours_rate = len(sparse) / best_of(lambda: triple_barrier(bars, sparse, PT_SL, HORIZON, target), RUNS)[0]
    print(f"\nAFML snippet 3.2 style pandas loop: {PEER_EVENTS:,} events in {peer_s:.2f} s "
          f"({PEER_EVENTS / peer_s:,.0f} events/s); triple_barrier (sparse, closes) {ours_rate:,.0f} events/s: "
          f"{ours_rate / (PEER_EVENTS / peer_s):,.0f}x; same exits on all {len(peer):,} events")
    counts = {k: int(v) for k, v in labels.barrier.value_counts().items()}
    print(f"every-bar labels (closes): {counts}, undetermined {int(labels.label.isna().sum())} "
          f"(target warm-up and the last {HORIZON} bars); mean bars to exit "
          f"{(bars.index.get_indexer(labels.t1.dropna()) - bars.index.get_indexer(labels.t1.dropna().index)).mean():.1f}")


if __name__ == "__main__":
    main()
