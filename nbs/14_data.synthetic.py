# %% [markdown]
# # Synthetic bars
#
# > Seeded random-walk OHLCV bars with GARCH(1,1) volatility clustering, for scale tests and benchmarks only.

# %%
#| default_exp data.synthetic

# %% [markdown]
# Real samples (`data/samples/`) are what strategies are judged on. Synthetic bars are for what real
# samples are too small for: a million bars to time a kernel, a replay long enough to test resume,
# a store benchmark. They follow the bar contract (DESIGN §5) exactly, so code that breaks on them
# breaks on real data too; their statistics only need to be plausible, not fitted to any market.

# %%
#| export
from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from tradingbot.data.timeframes import timeframe_delta

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail

# %%
#| export
_YEAR = pd.Timedelta(days=365)  # synthetic markets trade 24/7


# %% [markdown]
# ## Kernels
# Two numba kernels on plain arrays. The first draws log returns whose variance follows GARCH(1,1):
# $\sigma_t^2 = \omega + \alpha r_{t-1}^2 + \beta \sigma_{t-1}^2$, so a large move raises the next bar's
# variance and calm stretches stay calm (volatility clustering). It starts at the unconditional
# variance $\omega / (1 - \alpha - \beta)$ so there is no warm-up transient.

# %%
#| export
@njit(cache=True)
def garch_returns_nb(shocks: np.ndarray, # standard normal draws, one per bar
                     omega: float,       # variance intercept, in squared log return per bar
                     alpha: float,       # weight of the last squared return
                     beta: float,        # weight of the last variance
                    ) -> tuple:          # (log returns, conditional sigmas)
    "Log returns `sigma_t * z_t` with a GARCH(1,1) conditional variance."
    n = shocks.shape[0]
    returns, sigmas = np.empty(n), np.empty(n)
    var = omega / (1.0 - alpha - beta)
    for t in range(n):
        sigmas[t] = np.sqrt(var)
        returns[t] = sigmas[t] * shocks[t]
        var = omega + alpha * returns[t] * returns[t] + beta * var
    return returns, sigmas


# %%
r, s = garch_returns_nb(np.array([0.0, 3.0, 0.0, 0.0]), 0.1, 0.2, 0.7)
test_close(s[0], 1.0)                                   # unconditional: 0.1 / (1 - 0.9)
test_close(r[1], 3.0 * s[1])
test_close(s[2] ** 2, 0.1 + 0.2 * r[1] ** 2 + 0.7 * s[1] ** 2)
assert s[1] < 1.0 and s[2] > s[1] and s[3] < s[2]      # calm decays; the shock lifts the next sigma, then fades


# %% [markdown]
# The second builds consistent bars from the returns: each bar opens at the previous close, closes at
# `open * exp(r)`, and its wicks reach beyond the body by a random multiple of the bar's sigma, so
# `high >= max(open, close)` and `low <= min(open, close)` hold by construction and prices stay positive.
# Volume is lognormal noise scaled up on large moves (`1 + |r| / bar_sigma`), as busy bars are.
# The output is one `(5, n)` block, so each column of the frame is contiguous.

# %%
#| export
@njit(cache=True)
def ohlcv_from_returns_nb(returns: np.ndarray,   # log return of each bar
                          sigmas: np.ndarray,    # conditional sigma of each bar
                          wicks: np.ndarray,     # (2, n) non-negative wick sizes in sigmas: up, down
                          volume_noise: np.ndarray, # log-volume noise per bar
                          price: float,          # open of the first bar, price units
                          base_volume: float,    # median volume of a quiet bar
                          bar_sigma: float,      # unconditional sigma of log returns per bar: "a large move"
                         ) -> np.ndarray:        # (5, n): open, high, low, close, volume
    "OHLCV rows from log returns: open = previous close, wicks outside the body, volume rising with |r|."
    n = returns.shape[0]
    out = np.empty((5, n))
    close = price
    for t in range(n):
        open_, close = close, close * np.exp(returns[t])
        out[0, t], out[3, t] = open_, close
        out[1, t] = max(open_, close) * np.exp(sigmas[t] * wicks[0, t])
        out[2, t] = min(open_, close) * np.exp(-sigmas[t] * wicks[1, t])
        out[4, t] = base_volume * np.exp(volume_noise[t]) * (1.0 + abs(returns[t]) / bar_sigma)
    return out


# %%
o = ohlcv_from_returns_nb(np.log(np.array([1.1, 0.5])), np.array([0.1, 0.1]), np.ones((2, 2)), np.zeros(2),
                          100.0, 10.0, 0.1)
test_close(o[:, 0], [100.0, 110.0 * np.exp(0.1), 100.0 * np.exp(-0.1), 110.0, 10.0 * (1 + np.log(1.1) / 0.1)])
test_close(o[0, 1], 110.0)                              # opens at the previous close
test_close(o[3, 1], 55.0)


# %% [markdown]
# ## `synthetic_bars`
# The pandas face: draw the random inputs from one seeded numpy generator (so a seed fixes the frame on
# every platform numpy supports), run the kernels, wrap the block in a contract frame. `vol` is an
# annualised volatility over a 24/7 year, so the same `vol` gives comparable paths at every timeframe;
# `omega` follows from it so that the unconditional variance is exactly the per-bar `vol`.

# %%
#| export
def _utc(ts: str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def _check_params(n, price, vol, alpha, beta, base_volume):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer number of bars, got {n!r}")
    if not (price > 0 and vol > 0 and base_volume > 0):
        raise ValueError(f"price, vol and base_volume must be > 0, got {price}, {vol}, {base_volume}")
    if not (alpha >= 0 and beta >= 0 and alpha + beta < 1):
        raise ValueError(f"GARCH needs alpha >= 0, beta >= 0 and alpha + beta < 1 (stationary), got {alpha}, {beta}")


def synthetic_bars(n: int,                            # number of bars
                   timeframe: str = "1m",             # one of 1m 5m 15m 1h 4h 1d
                   start: str | pd.Timestamp = "2020-01-01", # open time of the first bar (naive = UTC)
                   seed: int = 0,                     # seeds every random draw
                   price: float = 100.0,              # open of the first bar, price units
                   vol: float = 0.6,                  # annualised volatility of log returns, 0.6 = 60 % (365-day year)
                   alpha: float = 0.08,               # GARCH reaction to the last squared return
                   beta: float = 0.9,                 # GARCH persistence of variance
                   base_volume: float = 1000.0,       # median volume of a quiet bar
                  ) -> pd.DataFrame:                  # contract bars: index `ts` (UTC), float64 OHLCV
    "Seeded OHLCV bars: a GARCH(1,1) random walk of log returns with consistent OHLC and |r|-driven volume."
    _check_params(n, price, vol, alpha, beta, base_volume)
    step, first = timeframe_delta(timeframe), _utc(start)
    if (pd.Timestamp.max.value - first.value) // step.value < n - 1:  # integer ns: no Timedelta overflow
        raise ValueError(f"{n} bars of {timeframe} from {first} run past {pd.Timestamp.max.year}: "
                         "use fewer bars, a shorter timeframe or an earlier start")
    bar_sigma = vol * np.sqrt(step / _YEAR)
    rng = np.random.default_rng(seed)
    shocks, wicks = rng.standard_normal(n), rng.exponential(0.5, size=(2, n))
    volume_noise = rng.normal(0.0, 0.5, n)
    returns, sigmas = garch_returns_nb(shocks, bar_sigma**2 * (1 - alpha - beta), alpha, beta)
    block = ohlcv_from_returns_nb(returns, sigmas, wicks, volume_noise, float(price), float(base_volume), bar_sigma)
    # no `freq` on the index: stored and real frames have none, and a round trip must compare equal
    index = pd.DatetimeIndex(pd.date_range(first, periods=n, freq=step, name="ts", unit="ns"), freq=None)
    bars = pd.DataFrame(block.T, index=index, columns=["open", "high", "low", "close", "volume"])
    bars.attrs["timeframe"] = timeframe  # as the data layer's bars carry it
    return bars


# %% [markdown]
# Same seed, same frame; another seed, another path. The frame keeps the contract: UTC index named
# `ts`, strictly increasing at exactly the timeframe's spacing, float64 columns, consistent OHLC.

# %%
a = synthetic_bars(2_000, "5m", seed=7)
test_eq(a.equals(synthetic_bars(2_000, "5m", seed=7)), True)
test_eq(np.array_equal(a.close, synthetic_bars(2_000, "5m", seed=8).close), False)

test_eq(list(a.columns), ["open", "high", "low", "close", "volume"])
test_eq(set(a.dtypes), {np.dtype("float64")})
test_eq((a.index.name, str(a.index.dtype), a.index.freq), ("ts", "datetime64[ns, UTC]", None))
test_eq(a.index[0], pd.Timestamp("2020-01-01", tz="UTC"))
test_eq(a.index.is_monotonic_increasing and a.index.is_unique, True)
test_eq(set(np.diff(a.index)), {np.timedelta64(5, "m")})

# %%
test_eq(bool((a.high >= a[["open", "close"]].max(axis=1)).all()), True)
test_eq(bool((a.low <= a[["open", "close"]].min(axis=1)).all()), True)
test_eq(bool((a.low > 0).all() and (a.volume > 0).all()), True)
test_eq(a.open.iloc[0], 100.0)
test_eq(a.open.to_numpy()[1:], a.close.to_numpy()[:-1])  # open = previous close, exactly

# %%
test_eq(synthetic_bars(3, "1d", start=pd.Timestamp("2021-06-01 02:00", tz="Europe/Paris")).index[0],
        pd.Timestamp("2021-06-01 00:00", tz="UTC"))
test_fail(lambda: synthetic_bars(10, "2m"), contains="unknown timeframe")
test_fail(lambda: synthetic_bars(0), contains="positive integer")
test_fail(lambda: synthetic_bars(10, alpha=0.2, beta=0.8), contains="alpha + beta < 1")
test_fail(lambda: synthetic_bars(200_000, "1d"), contains="run past")


# %% [markdown]
# ## Statistics
# The per-bar volatility matches `vol`, squared returns are autocorrelated (GARCH(1,1) with these
# defaults has a lag-1 autocorrelation of squared returns near 0.2; a shuffled copy has none), and
# volume rises with the size of the move.

# %%
def acf1(x: np.ndarray) -> float:
    x = x - x.mean()
    return float(x[1:] @ x[:-1] / (x @ x))

b = synthetic_bars(100_000, "1h", seed=3)
r = np.diff(np.log(b.close.to_numpy()))
test_close(r.std(), 0.6 * np.sqrt(1 / (365 * 24)), eps=0.1 * 0.6 * np.sqrt(1 / (365 * 24)))
clustered, shuffled = acf1(r**2), acf1(np.random.default_rng(0).permutation(r) ** 2)
assert clustered > 0.1, clustered
assert clustered > shuffled + 0.08, (clustered, shuffled)
assert np.corrcoef(np.abs(r), b.volume.to_numpy()[1:])[0, 1] > 0.3
