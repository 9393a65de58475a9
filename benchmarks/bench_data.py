"""Data benchmark: synthetic generation, parquet (zstd, uncompressed) vs CSV write/read, replay throughput.

Prints figures only (DESIGN §9: tests never assert on wall time). Run: `.venv/bin/python benchmarks/bench_data.py`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from _common import best_of, machine_line

from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.synthetic import synthetic_bars
from tradingbot.jsonlog import configure

N_BARS = 1_000_000
READ_RUNS = 3


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, index_col="ts", parse_dates=["ts"])


FORMATS = {  # name: (file name, writer, reader)
    "parquet zstd": ("bars.zstd.parquet", lambda df, p: df.to_parquet(p, compression="zstd"), pd.read_parquet),
    "parquet none": ("bars.none.parquet", lambda df, p: df.to_parquet(p, compression=None), pd.read_parquet),
    "csv": ("bars.csv", lambda df, p: df.to_csv(p), read_csv),
}


def check_round_trip(name: str, original: pd.DataFrame, back: pd.DataFrame) -> None:
    "Fail loudly if a format lost bars, timestamps or (beyond float printing) values."
    assert back.index.equals(original.index), f"{name}: index changed on the round trip"
    if name.startswith("parquet"):
        pd.testing.assert_frame_equal(back, original)
    else:
        np.testing.assert_allclose(back.to_numpy(), original.to_numpy(), rtol=1e-12)


def bench_formats(bars: pd.DataFrame, directory: Path) -> list[dict]:
    rows = []
    for name, (file_name, write, read) in FORMATS.items():
        path = directory / file_name
        write_s, _ = best_of(lambda: write(bars, path), 1)
        read_s, back = best_of(lambda: read(path), READ_RUNS)
        check_round_trip(name, bars, back)
        mb = path.stat().st_size / 1e6
        rows.append(dict(format=name, size_mb=mb, write_s=write_s, write_mb_s=mb / write_s,
                         read_s=read_s, read_mb_s=mb / read_s))
    return rows


def print_table(rows: list[dict]) -> None:
    csv_read = next(r["read_s"] for r in rows if r["format"] == "csv")
    print(f"{'format':<14}{'size MB':>9}{'write s':>9}{'write MB/s':>12}{'read s':>9}{'read MB/s':>11}"
          f"{'read x CSV':>12}")
    for r in rows:
        print(f"{r['format']:<14}{r['size_mb']:>9.1f}{r['write_s']:>9.3f}{r['write_mb_s']:>12.1f}"
              f"{r['read_s']:>9.3f}{r['read_mb_s']:>11.1f}{csv_read / r['read_s']:>11.1f}x")


def main() -> None:
    configure(tempfile.mkdtemp())  # the replay's log events stay out of the repository's logs/
    print(machine_line(pandas=pd.__version__))
    first_s, _ = best_of(lambda: synthetic_bars(10), 1)
    gen_s, bars = best_of(lambda: synthetic_bars(N_BARS, "1m"), READ_RUNS)
    print(f"synthetic_bars: first call (JIT or cache load) {first_s:.2f} s; "
          f"{N_BARS:,} 1m bars best of {READ_RUNS}: {gen_s:.3f} s ({N_BARS / gen_s / 1e6:.1f} M bars/s)")
    with tempfile.TemporaryDirectory() as d:
        rows = bench_formats(bars, Path(d))
    print(f"\n{N_BARS:,} bars, reads best of {READ_RUNS}, MB/s = file size / time:")
    print_table(rows)
    zstd, csv = rows[0], rows[2]
    print(f"\nparquet zstd reads {csv['read_s'] / zstd['read_s']:.1f}x faster than CSV, "
          f"file {csv['size_mb'] / zstd['size_mb']:.1f}x smaller")
    feed = ReplayFeed(bars, "1m", symbol="SYN")
    replay_s, count = best_of(lambda: sum(1 for _ in feed.iter_bars()), 1)
    print(f"ReplayFeed.iter_bars (unpaced): {count:,} bars in {replay_s:.2f} s ({count / replay_s / 1e3:.0f} k bars/s)")


if __name__ == "__main__":
    main()
