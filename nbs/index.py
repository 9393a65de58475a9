# %% [markdown]
# # tradingbot
#
# > A notebook-first research workspace for a multi-asset trading bot: every module of the library is a lesson on real bundled data that carries its own tests.

# %% [markdown]
# :::{note}
# **The research tour is coming.** This page will walk from an idea to a gate verdict on the bundled
# BTC-USD hourly sample: a custom strategy in about ten lines, backtest, plot, sweep heatmap,
# walk-forward table, stress distributions, deflated Sharpe and PBO, and the gate's reasons. Until
# then, here is one backtest with today's API; the lessons in the sidebar hold the rest.
# :::

# %%
#| hide
from fastcore.test import test_eq

# %% [markdown]
# ## A first backtest
# RSI-2 on hourly BTC-USD: buy when the 2-bar RSI falls below 10 (a short, sharp dip), sell when it
# rises above 70. `backtest` decides at each bar's close and fills at the next bar's open through the
# fill model, all in with the starting cash — once without costs and once paying a 0.055 % taker fee
# per fill (Bybit's perpetuals rate).

# %%
import matplotlib.pyplot as plt
import talib

from tradingbot.data.samples import load_sample
from tradingbot.execution.fills import FillConfig
from tradingbot.validation.backtest import backtest

bars = load_sample("btcusd_1h")   # Coinbase BTC-USD, hourly, 2017-07 to 2019-10
rsi = talib.RSI(bars.close.to_numpy(), timeperiod=2)
entries, exits = rsi < 10, rsi > 70
free = backtest(bars, entries=entries, exits=exits, init_cash=10_000)
paid = backtest(bars, entries=entries, exits=exits, init_cash=10_000, fill=FillConfig(taker_fee_pct=0.055))
paid.stats

# %%
test_eq(len(paid.equity), len(bars))
test_eq(paid.stats["n_trades"], free.stats["n_trades"])   # the same trades; only the fees differ
assert paid.stats["n_trades"] > 100, paid.stats           # a dip-buyer trades often on hourly bars
assert paid.stats["fees"] > 0 and paid.stats["final_equity"] < free.stats["final_equity"]

# %% [markdown]
# Equity against holding BTC over the same bars: about 900 round trips at 0.055 % a fill cost more
# than the starting cash.

# %%
hold = 10_000 * bars.close / bars.open.iloc[0]
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.plot(free.equity.index, free.equity, label="RSI-2, no costs")
ax.plot(paid.equity.index, paid.equity, label="RSI-2, 0.055 % taker fee")
ax.plot(hold.index, hold, label="buy and hold", color="grey", alpha=0.6)
ax.set(ylabel="equity ($)", title="RSI-2 on BTC-USD 1h from $10,000")
ax.legend();
