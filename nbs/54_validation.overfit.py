# %% [markdown]
# # Overfitting statistics
#
# > Probabilistic and deflated Sharpe ratios, and the probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

# %%
#| default_exp validation.overfit

# %% [markdown]
# A parameter search that tries a hundred variants will find a good-looking Sharpe ratio in pure
# noise. Two corrections from Bailey and López de Prado tell how much of the best backtest to believe:
#
# - the **deflated Sharpe ratio** (DSR) asks whether the chosen Sharpe beats what the best of $N$
#   worthless trials would show, given how much the trials' Sharpe ratios varied and how skewed and
#   fat-tailed the returns are;
# - the **probability of backtest overfitting** (PBO) asks how often the variant that was best
#   in-sample lands in the bottom half out-of-sample.
#
# Sharpe ratios in this notebook are **per period** (per bar, not annualised): the formulas count
# observations. Divide an annualised Sharpe ratio by √periods to get one.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import norm

from tradingbot.validation.metrics import observed_returns

# %%
#| hide
import matplotlib.pyplot as plt
import quantstats as qs
from fastcore.test import test_close, test_eq, test_fail

from tradingbot.data.samples import load_sample

spx = load_sample("spx_1d")
spx_ret = spx.close.pct_change().dropna()


# %% [markdown]
# ## Probabilistic Sharpe ratio
# An estimated Sharpe ratio $\widehat{SR}$ from $n$ returns with skewness $\gamma_3$ and kurtosis
# $\gamma_4$ (3 for a normal distribution) has standard error
# $\sigma_{SR} = \sqrt{(1 - \gamma_3 \widehat{SR} + \frac{\gamma_4 - 1}{4}\widehat{SR}^2)/(n-1)}$
# (Bailey & López de Prado 2012). The PSR is the probability that the true Sharpe ratio exceeds a
# benchmark $SR^*$: $\Phi\big((\widehat{SR} - SR^*)/\sigma_{SR}\big)$. Negative skew and fat tails widen
# the error and lower the PSR. Skewness and kurtosis are pandas' bias-corrected estimators, as in
# quantstats, so `probabilistic_sharpe_ratio(r)` equals `qs.stats.probabilistic_sharpe_ratio(r)`.

# %%
#| export
def psr_from_stats(sr: float,                 # estimated per-period Sharpe ratio
                   n: int,                    # number of returns it was estimated from
                   skew: float = 0.0,         # skewness of the returns
                   kurtosis: float = 3.0,     # kurtosis of the returns (3 = normal, not excess)
                   sr_benchmark: float = 0.0, # per-period Sharpe ratio to beat
                  ) -> float:                 # probability that the true Sharpe ratio exceeds the benchmark
    "Probabilistic Sharpe ratio from summary statistics."
    if n < 2:
        raise ValueError(f"need at least 2 returns for a probabilistic Sharpe ratio, got {n}")
    sigma = math.sqrt((1 - skew * sr + (kurtosis - 1) / 4 * sr**2) / (n - 1))
    return float(norm.cdf((sr - sr_benchmark) / sigma))


def return_moments(returns,  # per-bar returns (Series or array); NaN = no observation
                  ) -> tuple[float, int, float, float]:  # (sharpe, n, skew, kurtosis)
    "Per-period Sharpe ratio, count, skewness and kurtosis (non-excess) of the observed returns."
    r = pd.Series(observed_returns(returns))
    return float(r.mean() / r.std(ddof=1)), len(r), float(r.skew()), float(r.kurt() + 3)


def probabilistic_sharpe_ratio(returns,                  # per-bar returns (Series or array)
                               sr_benchmark: float = 0.0, # per-period Sharpe ratio to beat
                              ) -> float:
    "Probability that the returns' true Sharpe ratio exceeds `sr_benchmark` (Bailey & López de Prado)."
    sr, n, skew, kurt = return_moments(returns)
    return psr_from_stats(sr, n, skew, kurt, sr_benchmark)


# %% [markdown]
# By hand, then on the S&P 500: twenty years of daily returns with a 0.3 annual Sharpe ratio are
# about 90 % likely to have a positive true Sharpe ratio, but only about 17 % likely to beat 0.5.

# %%
test_eq(psr_from_stats(0.0, 100), 0.5)                         # SR = SR* = 0: a coin flip
test_close(psr_from_stats(0.1, 101), norm.cdf(0.1 * 10 / math.sqrt(1 + 0.5 * 0.01)), eps=1e-15)
test_close(psr_from_stats(0.1, 101, skew=-1, kurtosis=6),
           norm.cdf(0.1 * 10 / math.sqrt(1 + 0.1 + 1.25 * 0.01)), eps=1e-15)
assert psr_from_stats(0.1, 500, skew=-2, kurtosis=9) < psr_from_stats(0.1, 500)   # fat left tail: less sure
test_close(probabilistic_sharpe_ratio(spx_ret), qs.stats.probabilistic_sharpe_ratio(spx_ret), eps=1e-12)
sr, n, skew, kurt = return_moments(spx_ret)
psr_0, psr_half = probabilistic_sharpe_ratio(spx_ret), probabilistic_sharpe_ratio(spx_ret, 0.5 / math.sqrt(252))
print(f"S&P 500: SR {sr * math.sqrt(252):.2f}/yr, skew {skew:.2f}, kurtosis {kurt:.1f}, "
      f"PSR(0) {psr_0:.2f}, PSR(0.5/yr) {psr_half:.2f}")
assert 0.85 < psr_0 < 0.95 and psr_half < 0.25
test_fail(lambda: psr_from_stats(0.1, 1), contains="at least 2 returns")

# %% [markdown]
# ## Deflated Sharpe ratio
# The best of $N$ trials whose true Sharpe ratio is zero still shows, in expectation,
# $SR_0 = \sqrt{V}\,\big((1-\gamma)\,\Phi^{-1}(1 - \tfrac1N) + \gamma\,\Phi^{-1}(1 - \tfrac{1}{Ne})\big)$,
# where $V$ is the variance of the trials' estimated Sharpe ratios and $\gamma \approx 0.5772$ is the
# Euler-Mascheroni constant (Bailey & López de Prado 2014). The DSR is the PSR against that
# benchmark. $N$ and $V$ come from the search that produced the candidate: pass every trial's
# per-period Sharpe ratio (`trials_sharpe`), or the two numbers. Count every variant tried, including
# those discarded by hand — too small an $N$ is the commonest way to flatter a strategy.

# %%
#| export
EULER_GAMMA = 0.5772156649015329


def expected_max_sharpe(n_trials: int,   # N: independent trials in the search
                        sr_var: float,   # V: variance of the trials' per-period Sharpe ratios
                       ) -> float:       # expected best per-period Sharpe ratio under zero true skill
    "Expected maximum Sharpe ratio of `n_trials` skill-less trials (0 for a single trial)."
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    z1, z2 = norm.ppf(1 - 1 / n_trials), norm.ppf(1 - 1 / (n_trials * math.e))
    return math.sqrt(sr_var) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def deflated_sharpe_ratio(returns,                       # the chosen trial's per-bar returns
                          trials_sharpe=None,            # per-period Sharpe ratio of every trial in the search
                          n_trials: int | None = None,   # or: number of trials ...
                          sr_var: float | None = None,   # ... and the variance of their Sharpe ratios
                         ) -> float:                     # probability the Sharpe ratio beats the best of N by skill
    "PSR of `returns` against the expected best Sharpe ratio of the search's trials."
    if trials_sharpe is not None:
        trials = np.asarray(trials_sharpe, dtype="float64")
        trials = trials[np.isfinite(trials)]
        n_trials, sr_var = len(trials), (float(trials.var(ddof=1)) if len(trials) > 1 else 0.0)
    if n_trials is None or sr_var is None:
        raise ValueError("pass trials_sharpe (every trial's Sharpe ratio) or both n_trials and sr_var")
    return probabilistic_sharpe_ratio(returns, expected_max_sharpe(n_trials, sr_var))


# %% [markdown]
# The worked example of Bailey & López de Prado (2014): an annual Sharpe ratio of 2.5 over 1250 days
# (250 a year), skewness -3, kurtosis 10, found among 100 trials whose annualised Sharpe ratios varied
# with variance 0.5. The paper reports a DSR of 0.9004.

# %%
sr_day, v_day = 2.5 / math.sqrt(250), 0.5 / 250
sr0 = expected_max_sharpe(100, v_day)
test_close(sr0 * math.sqrt(250), 1.7894, eps=1e-3)   # the paper's expected best annual Sharpe ratio
test_close(psr_from_stats(sr_day, 1250, -3, 10, sr0), 0.9004, eps=1e-3)
by_hand = (1 - EULER_GAMMA) * norm.ppf(0.99) + EULER_GAMMA * norm.ppf(1 - 1 / (100 * math.e))
test_close(sr0, math.sqrt(v_day) * by_hand, eps=1e-15)
test_eq(expected_max_sharpe(1, 0.3), 0.0)
dsr = [deflated_sharpe_ratio(spx_ret, n_trials=n, sr_var=1e-4) for n in (1, 2, 10, 100, 1000)]
test_close(dsr[0], probabilistic_sharpe_ratio(spx_ret), eps=1e-15)   # one trial: nothing to deflate
assert all(a > b for a, b in zip(dsr, dsr[1:])), dsr                   # more trials, less belief
test_fail(lambda: deflated_sharpe_ratio(spx_ret, n_trials=5), contains="both n_trials and sr_var")

# %% [markdown]
# ## A search to judge
# The rest of this notebook judges a real search: long-or-flat S&P 500 moving-average rules, one per
# lookback from 5 to 200 days (today's position decided at yesterday's close). 40 trials, 5030 days.

# %%
lookbacks = np.arange(5, 205, 5)
close = spx.close
trial_returns = pd.DataFrame({n: (close > close.rolling(n).mean()).shift(1, fill_value=False) * close.pct_change()
                              for n in lookbacks}).iloc[1:]
trial_sr = trial_returns.mean() / trial_returns.std()
best = trial_sr.idxmax()
psr_best = probabilistic_sharpe_ratio(trial_returns[best])
dsr_best = deflated_sharpe_ratio(trial_returns[best], trial_sr)
print(f"best lookback {best}: SR {trial_sr[best] * math.sqrt(252):.2f}/yr; PSR {psr_best:.3f}, DSR {dsr_best:.3f}")
assert dsr_best < psr_best

# %% [markdown]
# Why the deflation bites: the best of $N$ skill-less trials looks better the more trials there are.
# Left, the expected best annual Sharpe ratio of $N$ worthless trials whose Sharpe ratios vary as this
# search's did, against the best lookback's; right, the DSR that best lookback would get had it been
# found among $N$ trials. The grey line is the 40 trials actually run.

# %%
n_grid = np.unique(np.logspace(0, 3, 60).astype(int))
sr_var = trial_sr.var()
bar = np.array([expected_max_sharpe(n, sr_var) for n in n_grid]) * math.sqrt(252)
dsr_by_n = np.array([deflated_sharpe_ratio(trial_returns[best], n_trials=n, sr_var=sr_var) for n in n_grid])
test_close(deflated_sharpe_ratio(trial_returns[best], n_trials=len(trial_sr), sr_var=sr_var), dsr_best, eps=1e-12)
test_eq(((np.diff(bar) > 0).all(), (np.diff(dsr_by_n) < 0).all()), (True, True))   # more trials: higher bar, less belief
test_close(dsr_by_n[0], psr_best, eps=1e-12)                                        # N = 1: the PSR

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
left.semilogx(n_grid, bar, label="expected best of N, no skill")
left.axhline(trial_sr[best] * math.sqrt(252), color="tab:red", ls="--", label=f"best lookback ({best} days)")
left.set(xlabel="trials N", ylabel="annual Sharpe ratio", title="The bar rises with every trial")
left.legend(loc="lower right")
right.semilogx(n_grid, dsr_by_n, color="tab:red")
right.axhline(0.95, color="grey", ls=":", lw=1)
right.set(xlabel="trials N", ylabel="DSR", ylim=(0, 1), title="Belief in the best falls")
for ax in (left, right):
    ax.axvline(len(trial_sr), color="grey", lw=1)
fig.tight_layout();


# %% [markdown]
# ## Probability of backtest overfitting (CSCV)
# Bailey, Borwein, López de Prado and Zhu (2015): put the trials' returns side by side, $T$ rows by
# $N$ trials, and cut the rows into $S$ (even) blocks. For each of the $\binom{S}{S/2}$ ways to call
# half the blocks in-sample (IS) and the rest out-of-sample (OOS), pick the trial with the best IS
# Sharpe ratio and find its rank $r$ among all trials OOS ($1$ = worst, $N$ = best, ties averaged).
# With $\omega = r/(N+1)$ the logit is $\lambda = \ln\frac{\omega}{1-\omega}$, and
# $\mathrm{PBO} = P(\lambda \le 0)$: how often the IS winner is no better than the OOS median. Rows that
# do not fill $S$ equal blocks are dropped from the start (the oldest).
#
# Each Sharpe ratio is assembled from per-block sums of $r$ and $r^2$, so all combinations cost one
# matrix product instead of $\binom{S}{S/2}$ passes over the data.

# %%
#| export
@dataclass(frozen=True)
class PBOResult:
    "Outcome of CSCV: one entry per IS/OOS combination in the arrays."
    pbo: float               # share of logits <= 0
    logits: np.ndarray       # ln(w / (1 - w)) of the IS-best trial's OOS relative rank w
    best_trial: np.ndarray   # column position of the IS-best trial
    is_sharpe: np.ndarray    # its in-sample per-period Sharpe ratio
    oos_sharpe: np.ndarray   # its out-of-sample per-period Sharpe ratio

    @property
    def prob_oos_loss(self) -> float:
        "Share of combinations where the IS-best trial loses money out of sample."
        return float((self.oos_sharpe < 0).mean())


def _block_sharpes(sums: np.ndarray, squares: np.ndarray, counts: np.ndarray) -> np.ndarray:
    "Per-period Sharpe ratios from summed returns, squared returns and counts (rows: combinations)."
    mean = sums / counts
    var = (squares - counts * mean**2) / (counts - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, mean / np.sqrt(np.maximum(var, 0)), np.nan)


def _oos_rank(oos: np.ndarray, pick: np.ndarray) -> np.ndarray:
    "Rank (1 = worst, ties averaged) of each row's picked column among that row's columns."
    chosen = oos[np.arange(len(oos)), pick][:, None]
    return (oos < chosen).sum(axis=1) + ((oos == chosen).sum(axis=1) + 1) / 2


# %%
#| export
def probability_of_backtest_overfitting(trial_returns,    # T x N returns: one column per trial, rows in time order
                                        n_blocks: int = 16, # S: even number of row blocks
                                       ) -> PBOResult:
    "Probability of backtest overfitting of a search, by combinatorially symmetric cross-validation."
    m = np.asarray(trial_returns, dtype="float64")
    if m.ndim != 2 or m.shape[1] < 2:
        raise ValueError(f"trial_returns must be T x N with N >= 2 trials, got shape {m.shape}")
    if n_blocks < 2 or n_blocks % 2:
        raise ValueError(f"n_blocks must be even and >= 2, got {n_blocks}")
    if not np.isfinite(m).all():
        raise ValueError("trial_returns hold NaN or inf; fill bars without a position with 0")
    rows = len(m) // n_blocks
    if rows < 2:
        raise ValueError(f"{len(m)} rows cannot fill {n_blocks} blocks of at least 2 rows")
    blocks = m[len(m) - rows * n_blocks:].reshape(n_blocks, rows, -1)
    sums, squares = blocks.sum(axis=1), (blocks**2).sum(axis=1)
    in_sample = np.array([[b in c for b in range(n_blocks)] for c in combinations(range(n_blocks), n_blocks // 2)],
                         dtype="float64")
    counts = rows * n_blocks / 2
    is_sr = _block_sharpes(in_sample @ sums, in_sample @ squares, counts)
    oos_sr = _block_sharpes((1 - in_sample) @ sums, (1 - in_sample) @ squares, counts)
    pick = np.argmax(np.nan_to_num(is_sr, nan=-np.inf), axis=1)
    omega = _oos_rank(np.nan_to_num(oos_sr, nan=-np.inf), pick) / (m.shape[1] + 1)
    logits = np.log(omega / (1 - omega))
    take = np.arange(len(pick))
    return PBOResult(float((logits <= 0).mean()), logits, pick, is_sr[take, pick], oos_sr[take, pick])


# %% [markdown]
# By hand on a tiny matrix: two blocks (so two combinations), three trials. Block 1 favours trial 0,
# block 2 trial 2. Each IS winner is the OOS *worst* trial ($r = 1$, $\omega = 1/4$): PBO = 1.

# %%
tiny = np.array([[0.03, 0.01, -0.02], [0.01, 0.0, -0.01],     # block 1: trial 0 best, trial 2 worst
                 [-0.02, 0.01, 0.03], [-0.01, 0.0, 0.01]])    # block 2: the other way round
res = probability_of_backtest_overfitting(tiny, n_blocks=2)
test_eq(res.best_trial.tolist(), [0, 2])
test_close(res.logits, [math.log(1 / 3)] * 2, eps=1e-15)
test_eq((res.pbo, res.prob_oos_loss), (1.0, 1.0))
test_eq(_oos_rank(np.array([[1.0, 2.0, 2.0, 0.0]]), np.array([1])).tolist(), [3.5])   # ties share ranks 3 and 4
test_fail(lambda: probability_of_backtest_overfitting(tiny, n_blocks=3), contains="even and >= 2, got 3")
test_fail(lambda: probability_of_backtest_overfitting(tiny[:, :1]), contains="N >= 2 trials")

# %% [markdown]
# Pure noise: 50 trials of zero-mean returns. The IS winner is an OOS coin flip, so the PBO sits near
# 0.5 — on average: one noise matrix gives anything from about 0.2 to 0.8, because its 252
# combinations share the same data, so we average 20 seeded matrices. Add one trial with real skill
# and it wins IS and OOS alike: the PBO falls to near 0.

# %%
noise_pbos = [probability_of_backtest_overfitting(np.random.default_rng(seed).normal(0, 0.01, (1000, 50)),
                                                  n_blocks=10).pbo for seed in range(20)]
assert 0.4 < np.mean(noise_pbos) < 0.6, np.mean(noise_pbos)
noise = np.random.default_rng(42).normal(0, 0.01, (2000, 50))
noise_pbo = probability_of_backtest_overfitting(noise, n_blocks=10)
skilled = noise.copy()
skilled[:, 7] += 0.003   # a per-bar Sharpe ratio of 0.3 against noise
skilled_pbo = probability_of_backtest_overfitting(skilled, n_blocks=10)
assert skilled_pbo.pbo < 0.02 and (skilled_pbo.best_trial == 7).mean() > 0.98, skilled_pbo.pbo
test_eq(len(noise_pbo.logits), math.comb(10, 5))

# %% [markdown]
# And the moving-average search on the S&P 500:

# %%
ma_pbo = probability_of_backtest_overfitting(trial_returns, n_blocks=10)
print(f"moving-average search: PBO {ma_pbo.pbo:.2f}, IS-best loses OOS in {ma_pbo.prob_oos_loss:.0%} of splits")
assert 0 <= ma_pbo.pbo <= 1 and len(ma_pbo.oos_sharpe) == 252

# %% [markdown]
# The pictures behind the three numbers. Left, the distribution of the logits $\lambda$ over the
# combinations: the PBO is the share at or left of zero — about half for noise, none for the skilled
# trial, whose IS winner is the OOS best every time. Right, each combination's IS winner, its
# in-sample against its out-of-sample Sharpe ratio. The two halves split one fixed history, so a
# winner that shines more in-sample has less left out of sample and every cloud slopes down; what
# tells skill from luck is where the cloud sits: the skilled trial stays far above zero out of sample,
# the noise winners scatter around zero, and the moving-average winners keep part of their edge (an
# annual Sharpe ratio of 0.38 in-sample, 0.25 out of sample, on average).

# %%
results = {"noise": noise_pbo, "one skilled trial": skilled_pbo, "moving averages": ma_pbo}
for res_ in results.values():
    test_eq((res_.logits <= 0).mean(), res_.pbo)   # the area left of zero is the PBO
test_eq((skilled_pbo.oos_sharpe > 0).all(), True)
assert abs(noise_pbo.oos_sharpe.mean()) < 0.2 * noise_pbo.is_sharpe.mean()   # noise: the IS edge was luck
test_close(ma_pbo.is_sharpe.mean() * math.sqrt(252), 0.38, eps=0.005)
test_close(ma_pbo.oos_sharpe.mean() * math.sqrt(252), 0.25, eps=0.005)

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
bins = np.linspace(-4.5, 4.5, 37)
for (name, res_), color in zip(results.items(), ("tab:grey", "tab:green", "tab:blue")):
    left.hist(np.clip(res_.logits, -4.4, 4.4), bins=bins, alpha=0.55, color=color, label=f"{name}: PBO {res_.pbo:.2f}")
    right.scatter(res_.is_sharpe * math.sqrt(252), res_.oos_sharpe * math.sqrt(252), s=8, alpha=0.5, color=color)
left.axvline(0, color="black", lw=1)
left.set(xlabel="logit λ of the IS winner's OOS rank", ylabel="combinations", title="PBO = share of λ ≤ 0")
left.legend(fontsize=8, loc="upper left")
lims = [min(right.get_xlim()[0], right.get_ylim()[0]), max(right.get_xlim()[1], right.get_ylim()[1])]
right.plot(lims, lims, color="grey", lw=1, ls=":")   # OOS as good as IS
right.set(xlabel="in-sample Sharpe (annual)", ylabel="out-of-sample Sharpe (annual)",
          title="Each combination's IS winner")
fig.tight_layout();
