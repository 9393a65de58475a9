# %% [markdown]
# # Strategy validation report

# %% tags=["parameters"]
strategy = "rsi2"
data = "btcusd_1h"
asset = None
sizing = None
params = {}
gates = {}
seed = 42
n_sims = 1000
result_path = None
report_stamp = None

# %%
# %matplotlib inline
import json
import logging
import warnings

import matplotlib.pyplot as plt
import pandas as pd
import quantstats as qs
from IPython.display import HTML, Markdown, display

from tradingbot.validation.pipeline import validate_strategy
from tradingbot.validation.report import no_network, save_result

warnings.filterwarnings("ignore", category=FutureWarning)
logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # quantstats asks for Arial
pd.set_option("display.float_format", lambda x: f"{x:,.4f}")
v = validate_strategy(strategy, data, params=params or None, gates=gates or None, seed=seed, n_sims=n_sims,
                      progress=True, asset=asset, sizing=sizing)
record = {**v.record(), "stamp": report_stamp}

# %% [markdown]
# ## Parameters and provenance

# %%
display(pd.Series({"strategy": v.strategy, "data": v.data, "asset": v.asset or "none (research)", "sizing": v.sizing,
                   "parameters": json.dumps(v.params),
                   "gates": json.dumps(v.gates), "costs": json.dumps(v.costs, default=str), "seed": v.seed,
                   "data hash (sha256)": v.data_hash, "code commit": v.commit, "bars per year": v.periods,
                   "trials in the search": len(v.grid), "report": report_stamp}, name="value").to_frame())

# %% [markdown]
# ## Gate verdict

# %%
verdict = v.verdict
display(Markdown(f"### {'PASSED' if verdict.passed else 'FAILED'}"
                 + ("" if verdict.passed else "\n\n" + "\n".join(f"- {r}" for r in verdict.reasons))))
display(pd.DataFrame([{"rule": r.rule, "value": r.value, "needs": f"{r.op} {r.threshold:g}",
                       "passed": r.passed} for r in verdict.rules]).set_index("rule"))

# %% [markdown]
# ## Metrics

# %%
display(pd.Series(v.metrics, name=v.strategy).to_frame())

# %% [markdown]
# ## Equity and drawdown

# %%
equity = v.run.result.equity
fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, height_ratios=[2, 1])
equity.plot(ax=ax1, title=f"{v.strategy} on {v.data}: equity")
(equity / equity.cummax() - 1).plot(ax=ax2, color="tab:red", title="drawdown")
ax2.fill_between(equity.index, equity / equity.cummax() - 1, 0, color="tab:red", alpha=0.3)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Walk-forward (anchored; the grid's best set on each training span, judged on the next test span)

# %%
display(v.walk_forward)

# %% [markdown]
# ## Overfitting: deflated Sharpe ratio and PBO

# %%
display(pd.Series({"deflated Sharpe ratio": v.deflated_sharpe, "trials": len(v.grid),
                   "probability of backtest overfitting (CSCV)": v.pbo.pbo}, name="value").to_frame())
plt.figure(figsize=(6, 3))
plt.hist(v.pbo.logits, bins=30)
plt.axvline(0, color="k", lw=1)
plt.title("CSCV logits of the in-sample best trial's out-of-sample rank")
plt.show()

# %% [markdown]
# ## Stress

# %%
for name in ("reorder", "bootstrap"):
    paths = v.stress[name]
    if paths is None:
        display(Markdown(f"*{name}: fewer than two trades*"))
        continue
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    for ax, col in zip(axes, ("max_drawdown", "sharpe")):
        if paths[col].max() - paths[col].min() > 1e-9 * max(1.0, paths[col].abs().max()):
            paths[col].plot.hist(ax=ax, bins=40, title=f"{name}: {col} of {len(paths)} paths")
        else:  # reordering keeps the set of trade returns, so their Sharpe ratio cannot change
            ax.set_title(f"{name}: {col} is {paths[col].iloc[0]:.4f} on every path")
    axes[0].axvline(v.metrics["max_drawdown"], color="k", lw=1)
    plt.tight_layout()
    plt.show()
    display(paths[["max_drawdown", "sharpe"]].describe(percentiles=[0.05, 0.5, 0.95]).T)

# %%
display(Markdown("**Cost shocks**"))
display(v.stress["costs"][["sharpe", "total_return", "max_drawdown", "trades", "error"]])
display(Markdown("**Parameter perturbation (±10 %)**"))
display(v.stress["parameters"][["sharpe", "total_return", "max_drawdown", "trades", "error"]])
display(Markdown("**Regime slices**"))
display(v.stress["regimes"][["bars", "share", "sharpe", "total_return", "max_drawdown"]])

# %% [markdown]
# ## Tearsheet (quantstats; no benchmark, no network)

# %%
returns = v.run.returns.copy()
returns.index = returns.index.tz_localize(None)
with no_network():
    qs.reports.metrics(returns, mode="full", periods_per_year=int(round(v.periods)), display=True)
    qs.plots.snapshot(returns, title=f"{v.strategy} on {v.data}", show=True)
    qs.plots.monthly_heatmap(returns, show=True)

# %%
if result_path:
    save_result(record, result_path)
