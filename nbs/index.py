# %% [markdown]
# # tradingbot
#
# > A notebook-first research workspace for a multi-asset trading bot: every module of the library is a lesson on real bundled data that carries its own tests.

# %% [markdown]
# ## From an idea to a gate verdict
# This tour takes one idea on the bundled BTC-USD hourly sample from ten lines of code to the verdict of
# the promotion gate — the same gate that decides whether the bot may ever trade it with real money.
# Every number below is measured **as the bot would trade**: the `crypto_spot` asset's fees, lot step,
# minimum order and stop band, the paper session's $1,000, and the risk sizing of paper and live ($10 a
# trade below $1,000, then a tier of equity at risk at the stop, cut in drawdowns, capped at a quarter of
# equity in one position). The lessons in the sidebar explain each step.

# %%
#| hide
from fastcore.test import test_eq

# %% [markdown]
# ### 1. The idea, in ten lines
# A channel breakout: buy when the close clears the highest high of the last `period` bars, sell when it
# falls under the lowest low of the last `exit` bars, with a stop `atr_mult` ATRs under the entry. Signals
# are decided at a bar's close and filled at the next bar's open; `search_space` is the grid a researcher
# would try — validation counts every point of it as a trial.

# %%
from tradingbot.data.samples import load_sample
from tradingbot.strategies.base import Signals, Strategy, register_strategy


@register_strategy("breakout")
class Breakout(Strategy):
    "Buy a close above the `period`-bar high; sell one below the `exit`-bar low; ATR stop."
    defaults = {"period": 48, "exit": 24, "atr_mult": 3.0}
    search_space = {"period": [24, 48, 96], "exit": [12, 24, 48]}

    def indicator_spec(self):
        p, x = self.params["period"], self.params["exit"]
        return [{"name": "donchian", "period": p}, {"name": "donchian", "period": x}, {"name": "atr", "period": 14}]

    def decide(self, f):
        up = f[f"donchian_upper_{self.params['period']}"].shift(1)  # the channel of the bars before this one
        down = f[f"donchian_lower_{self.params['exit']}"].shift(1)
        return Signals(f.close > up, f.close < down, stop_distance=self.params["atr_mult"] * f.atr_14)


bars = load_sample("btcusd_1h")  # Coinbase BTC-USD, hourly, 2017-07 to 2019-10

# %% [markdown]
# ### 2. Backtest and plot
# `asset="crypto_spot"` trades it as paper and live will; `summary()` annualises on the 24/7 calendar the
# sample's timeframe and asset imply.

# %%
result = Breakout().backtest(bars, asset="crypto_spot")
stats = result.summary()
print({k: round(stats[k], 3) for k in ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor")})
result.plot(title="Breakout on BTC-USD 1h, as crypto_spot trades it");

# %%
test_eq(result.init_cash, 1000.0)
assert stats["trades"] > 50 and (result.trades.qty * result.trades.entry_price).max() < 0.26 * result.equity.max()

# %% [markdown]
# ### 3. Sweep the grid
# `sweep` runs every parameter set on the parallel numba kernel, each with its own ATR stop; the heatmap
# shows how much of the result is the parameters.

# %%
import matplotlib.pyplot as plt

table = Breakout().sweep(bars, asset="crypto_spot")
heat = table["total_return"].unstack("exit")
fig, ax = plt.subplots(figsize=(5, 3.5))
im = ax.imshow(heat.to_numpy(), cmap="RdYlGn", aspect="auto")
ax.set(xticks=range(len(heat.columns)), xticklabels=heat.columns, yticks=range(len(heat.index)),
       yticklabels=heat.index, xlabel="exit (bars)", ylabel="period (bars)", title="total return by parameters")
fig.colorbar(im, ax=ax);

# %%
test_eq(len(table), 9)
test_eq(table.loc[(48, 24)].n_trades, result.stats["n_trades"])  # the sweep's row of the defaults is that backtest

# %% [markdown]
# ### 4. Validate: walk-forward, stress, deflated Sharpe, PBO and the gate
# `validate_strategy` runs the whole battery on the same terms: the trials of the grid (which feed the
# deflated Sharpe ratio and the probability of backtest overfitting), an anchored walk-forward in which
# the grid's best set on each training span is judged on the next test span, and stress tests.

# %%
from tradingbot.validation.pipeline import validate_strategy

v = validate_strategy(Breakout(), bars, n_sims=300)
v.walk_forward[["test_start", "test_end", "chosen", "is_sharpe", "oos_sharpe"]]

# %% [markdown]
# Stress: the trade sequence bootstrapped and reordered (how bad the drawdown could have been with the
# same trades), costs shocked, parameters nudged by ±10 %.

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for ax, name in zip(axes, ("bootstrap", "reorder")):
    v.stress[name]["max_drawdown"].plot.hist(ax=ax, bins=40, title=f"{name}: max drawdown of {len(v.stress[name])} paths")
    ax.axvline(v.metrics["max_drawdown"], color="k", lw=1)
v.stress["costs"][["sharpe", "total_return", "max_drawdown"]]

# %% [markdown]
# The picture of the validation and its verdict: the deflated Sharpe ratio discounts the best-looking of
# the trials for the search that found it, PBO says how often the in-sample winner loses out of sample —
# and the gate names every rule the strategy fails.

# %%
v.plot()
print(f"deflated Sharpe {v.deflated_sharpe:.3f}, PBO {v.pbo.pbo:.2f}")
v.verdict.reasons

# %%
v.verdict.plot("Breakout against the live gate");

# %%
test_eq((v.asset, v.sizing, len(v.grid)), ("crypto_spot", "risk", 9))
assert not v.verdict.passed and v.verdict.reasons  # an honest answer: this idea is not ready for money
