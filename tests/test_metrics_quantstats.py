"""Parity: tradingbot.validation.metrics equals quantstats 0.0.86 on the same returns, within 1e-12.

Checked on real samples (S&P 500 daily with periods=252, BTC-USD hourly with periods=24*365, each also
with missing bars) and on hypothesis-generated series with zeros and NaN gaps. quantstats only sees
pandas Series here and is never given a benchmark, so it cannot reach the network.

Returns are drawn from [-0.9, 0.9]: quantstats reads a series with no negative value and one above 1
as *prices* and converts it, a guess our metrics deliberately do not make.
"""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
import quantstats as qs
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tradingbot.data.samples import load_sample
from tradingbot.validation import metrics as m

TOL = 1e-12


def close(ours: float, theirs: float) -> bool:
    "Equal within 1e-12 (relative for large values); NaN equals NaN, inf equals inf."
    theirs = float(theirs)
    if math.isnan(ours) or math.isnan(theirs):
        return math.isnan(ours) and math.isnan(theirs)
    return math.isclose(ours, theirs, rel_tol=TOL, abs_tol=TOL)


def pairs(returns: pd.Series, periods: float) -> dict:
    "(ours, quantstats') per metric; expectancy = quantstats' avg_return (see the metrics notebook)."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantstats warns on an all-zero win rate
        return {
            "sharpe": (m.sharpe(returns, periods), qs.stats.sharpe(returns, periods=periods)),
            "sortino": (m.sortino(returns, periods), qs.stats.sortino(returns, periods=periods)),
            "sharpe_rf": (m.sharpe(returns, periods, rf=0.03), qs.stats.sharpe(returns, rf=0.03, periods=periods)),
            "max_drawdown": (m.max_drawdown(returns), qs.stats.max_drawdown(returns)),
            "bar_profit_factor": (m.profit_factor(returns), qs.stats.profit_factor(returns)),
            "cvar": (m.cvar(returns), qs.stats.cvar(returns, method="historical")),
            "cvar_99": (m.cvar(returns, 0.99), qs.stats.conditional_value_at_risk(returns, confidence=0.99,
                                                                                    method="historical")),
            "bar_win_rate": (m.bar_win_rate(returns), qs.stats.win_rate(returns)),
            "bar_expectancy": (m.bar_expectancy(returns), qs.stats.avg_return(returns)),
        }


def assert_parity(returns: pd.Series, periods: float, skip=()):
    bad = {k: v for k, v in pairs(returns, periods).items() if k not in skip and not close(*v)}
    assert not bad, bad


@pytest.fixture(scope="module")
def samples():
    spx = load_sample("spx_1d").close.pct_change().dropna()
    btc = load_sample("btcusd_1h").close.pct_change().dropna()
    return {"spx": (spx, 252), "btc": (btc, 24 * 365)}


@pytest.mark.parametrize("name", ["spx", "btc"])
def test_real_samples(samples, name):
    returns, periods = samples[name]
    assert_parity(returns, periods)
    assert_parity(-returns, periods)  # a short position: different drawdown, tail and sign


@pytest.mark.parametrize("name", ["spx", "btc"])
def test_real_samples_with_gaps_and_flat_bars(samples, name):
    returns, periods = samples[name]
    rng = np.random.default_rng(7)
    gapped = returns.copy()
    gapped[rng.random(len(gapped)) < 0.05] = np.nan  # missing bars
    gapped[rng.random(len(gapped)) < 0.30] = 0.0     # flat bars
    assert_parity(gapped, periods)


def test_arrays_equal_series(samples):
    returns, periods = samples["spx"]
    for f in (m.sharpe, m.sortino):
        assert f(returns.to_numpy(), periods) == f(returns, periods)
    for f in (m.max_drawdown, m.cvar, m.profit_factor, m.bar_win_rate, m.bar_expectancy):
        assert f(returns.to_numpy()) == f(returns)


def test_summary_uses_the_same_definitions(samples):
    returns, periods = samples["btc"]
    s = m.summary(returns, periods=periods)
    for key, (_, theirs) in pairs(returns, periods).items():
        if key in s:
            assert close(s[key], theirs), key


returns_values = st.one_of(st.floats(-0.9, 0.9), st.just(0.0), st.just(np.nan))


@settings(max_examples=300, deadline=None)
@given(st.lists(returns_values, min_size=3, max_size=300), st.sampled_from([1, 252, 365, 24 * 365]))
def test_hypothesis_series(values, periods):
    obs = np.array([v for v in values if not math.isnan(v)])
    assume(len(obs) >= 2)
    # Near-constant series: std is cancellation noise (~1e-17) that two correct implementations
    # compute differently, so the Sharpe ratio of such a series means nothing.
    def constant(x):
        return bool(x.std() <= 1e-9 * max(1e-300, np.abs(x).max()))

    excess = obs - ((1 + 0.03) ** (1 / periods) - 1)
    skip = ("sharpe",) * constant(obs) + ("sharpe_rf",) * constant(excess)
    index = pd.date_range("2020-01-01", periods=len(values), freq="D", tz="UTC")
    returns = pd.Series(values, index=index, dtype="float64")
    assert_parity(returns, periods, skip=skip)
