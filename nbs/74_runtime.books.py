# %% [markdown]
# # Books
#
# > What the engine keeps per asset and mode: a paper book that always trades, and — when the asset is live — a live book beside it, each with its venue, portfolio, symbols and today's loss; the strategies' windows of bars; an asset's setup from the configuration.

# %%
#| default_exp runtime.books

# %% [markdown]
# Training never stops (seeds: "paper continues", "training runs regardless of live state"). So every
# enabled asset has a **paper book** on the feed for its whole life, and an asset switched live gets a
# second, **live book** beside it, fed by the same decisions and sized for its own money. The kill
# switch, stop modes and close-only act on the live book; the paper book goes on learning. A `Book` is
# one of them: the venue it trades at (the paper venue, or a live client), its portfolio, its paper
# session (paper only: the $1,000 bankroll and its top-ups), per symbol what the engine remembers
# between bars, and today's realised loss for the daily-loss cap.

# %%
#| export
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from tradingbot.brokers.base import ExecutionClient
from tradingbot.config import get_key
from tradingbot.data.feeds import BarEvent
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.model import MODES
from tradingbot.execution.portfolio import Portfolio
from tradingbot.execution.risk import AssetRules
from tradingbot.execution.simulated import SimulatedClient
from tradingbot.execution.sltp import SLTPManager
from tradingbot.runtime.session import PaperSession
from tradingbot.strategies.base import Strategy, make_strategy

# %%
#| hide
import pandas as pd
from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Per-symbol state
# `Window` keeps the last bars of a symbol as contiguous arrays (what `Strategy.latest` and TA-Lib take),
# amortising the shift: it holds twice the window and moves the newer half down when full. The window is
# long enough (600 bars by default) for the Wilder-smoothed indicators of the rule strategies to equal
# their full-history values; `strategies.rules` tests that. One window per symbol serves every book.

# %%
#| export
_FIELDS = ("open", "high", "low", "close", "volume")


class Window:
    "The last `size` bars of one symbol as float64 arrays."

    def __init__(self, size: int = 600,  # bars kept
                 ):
        if size < 2:
            raise ValueError(f"window size must be >= 2 bars, got {size}")
        self.size, self.n = size, 0
        self.data = np.empty((5, 2 * size))

    def push(self, bar: BarEvent,  # a closed bar
             ) -> None:
        "Append a closed bar."
        if self.n == self.data.shape[1]:
            self.data[:, :self.size] = self.data[:, self.size:]
            self.n = self.size
        self.data[:, self.n] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        self.n += 1

    def arrays(self) -> dict[str, np.ndarray]:
        "The window's columns (views, oldest first)."
        lo = max(0, self.n - self.size)
        return {name: self.data[k, lo:self.n] for k, name in enumerate(_FIELDS)}

    def returns(self, bars: int,  # how many returns
                ) -> np.ndarray:  # close-to-close returns of the last `bars` bars (fewer when the window has fewer)
        "The latest close-to-close returns."
        close = self.arrays()["close"][-(bars + 1):]
        return close[1:] / close[:-1] - 1.0


# %%
_w = Window(3)
for _k in range(8):
    _w.push(BarEvent("X", "1h", pd.Timestamp(0), pd.Timestamp(0), _k, _k + 1, _k - 1, _k + 0.5, 1.0, _k))
test_eq(_w.arrays()["open"].tolist(), [5.0, 6.0, 7.0])
assert _w.arrays()["close"].flags["C_CONTIGUOUS"]
test_eq(_w.returns(2).tolist(), [6.5 / 5.5 - 1, 7.5 / 6.5 - 1])


# %% [markdown]
# `SymbolBook` is what one book remembers about one symbol between bars: bars seen, the strategy that owns
# the position (or its working entry), the working orders, the owner's time stop, and the cooldown after a
# protective exit.

# %%
#| export
@dataclass
class SymbolBook:
    "What one book remembers about one symbol between bars."
    asset: str
    symbol: str
    index: int = -1  # bars of this symbol processed by the book (the last one's position)
    owner: str | None = None  # strategy whose entry opened the position (or is working)
    entry_bar: int = -1  # bar index of the fill that opened the position
    cooldown_end: int = -1  # no entry decided on bars <= this (the bar a protective exit fired)
    pending_entry: str | None = None  # client order id of a working entry
    pending_side: int = 0  # its direction: +1 long, -1 short
    pending_exit: str | None = None  # client order id of a working exit
    time_stop: int = 0  # the owner's time stop in bars (0: none)

    def to_dict(self) -> dict:
        return asdict(self)


# %% [markdown]
# ## An asset's setup

# %%
#| export
@dataclass
class AssetSetup:
    "One asset as the engine runs it."
    asset: str
    symbols: list[str]
    strategies: list[Strategy]
    fill: FillConfig
    rules: AssetRules  # lot step, minimum notional, stop band, shorting, leverage


def asset_setup(asset: str,  # an asset class of assets.json
                strategies: list[str] | None = None,  # strategy ids (default: the asset's configured ones)
                ) -> AssetSetup:
    "An asset's symbols, strategies, fill model and order rules from the configuration."
    spec = get_key(f"assets.{asset}")
    if spec is None:
        raise ValueError(f"unknown asset {asset!r}; see config/assets.json")
    ids = spec["strategies"] if strategies is None else strategies
    return AssetSetup(asset, list(spec["symbols"]), [make_strategy(s) for s in ids], FillConfig.for_asset(asset),
                      AssetRules.for_asset(asset))


# %%
s = asset_setup("crypto_spot", ["rsi2"])
test_eq((s.symbols, [x.strategy_id for x in s.strategies], s.rules.shorting), (["BTCUSDT"], ["rsi2"], False))
test_fail(lambda: asset_setup("stocks"), contains="unknown asset 'stocks'")


# %% [markdown]
# ## A book
# A paper book starts with the paper session's bankroll on the paper venue; a live book starts with the
# asset's allocation (`allocation_usd`) on the live venue the engine is given. `to_dict` is what the
# checkpoint keeps: the paper venue's whole snapshot (a live venue holds its own state, reconciled at a
# restart), the portfolio, the session, the symbols and today's loss.

# %%
#| export
@dataclass
class Book:
    "One asset's book in one mode: its venue, portfolio, paper session, symbols and today's realised loss."
    asset: str
    mode: str  # paper or live
    client: ExecutionClient
    portfolio: Portfolio
    session: PaperSession | None  # the paper bankroll (paper books only)
    symbols: dict[str, SymbolBook]
    daily_loss: list = field(default_factory=lambda: ["", 0.0])  # [UTC day of the bar close, loss that day]
    sltp: SLTPManager | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        self.sltp = SLTPManager(self.client)

    @property
    def key(self) -> str:
        "'asset/mode', as the checkpoint names it."
        return f"{self.asset}/{self.mode}"

    def loss_on(self, day: str,  # a UTC day, YYYY-MM-DD
                ) -> float:  # the realised loss booked that day (0 for another day)
        "Today's realised loss, as the daily-loss cap counts it."
        return self.daily_loss[1] if self.daily_loss[0] == day else 0.0

    def book_loss(self, day: str,  # the UTC day of the bar that closed the trade
                  pnl: float,  # the trade's realised P&L
                  ) -> None:
        "Add a closed trade's P&L to the day's loss (a win reduces it)."
        if self.daily_loss[0] != day:
            self.daily_loss = [day, 0.0]
        self.daily_loss[1] -= pnl

    def busy(self) -> bool:
        "True while the book holds a position or a working order."
        return bool(self.portfolio.open_positions()) or any(s.pending_entry or s.pending_exit
                                                            for s in self.symbols.values())

    def to_dict(self) -> dict:
        "The book as the checkpoint keeps it."
        snap = self.client.snapshot() if isinstance(self.client, SimulatedClient) else None
        return {"asset": self.asset, "mode": self.mode, "client": snap, "portfolio": self.portfolio.to_dict(),
                "session": self.session.to_dict() if self.session else None,
                "symbols": {s: b.to_dict() for s, b in self.symbols.items()}, "daily_loss": list(self.daily_loss)}

    @classmethod
    def from_dict(cls, d: dict,  # `to_dict` output
                  client: ExecutionClient,  # the venue (a paper venue restored from d['client'], or a live client)
                  ) -> Book:
        "A book restored from a checkpoint, on `client`."
        return cls(d["asset"], d["mode"], client, Portfolio.from_dict(d["portfolio"]),
                   PaperSession.from_dict(d["session"]) if d["session"] else None,
                   {s: SymbolBook(**b) for s, b in d["symbols"].items()}, list(d["daily_loss"]))


def new_book(setup: AssetSetup,  # the asset
             mode: str,  # paper or live
             client: ExecutionClient | None = None,  # the live venue (paper: a fresh paper venue)
             ) -> Book:
    "A fresh book: paper on the paper session's bankroll, live on the asset's allocation."
    symbols = {sym: SymbolBook(setup.asset, sym) for sym in setup.symbols}
    if mode == "paper":
        session = PaperSession.start(setup.asset)
        client = SimulatedClient(setup.asset, setup.fill, cash=session.equity, shorting=setup.rules.shorting)
        return Book(setup.asset, "paper", client, Portfolio(setup.asset, session.equity), session, symbols)
    if client is None:
        raise ValueError(f"a live book of {setup.asset} needs its live venue client")
    cash = float(get_key(f"assets.{setup.asset}.allocation_usd"))
    return Book(setup.asset, "live", client, Portfolio(setup.asset, cash), None, symbols)


# %%
import json  # noqa: E402

paper = new_book(s, "paper")
test_eq((paper.key, paper.portfolio.cash, paper.session.equity, paper.client.capabilities.shorting),
        ("crypto_spot/paper", 1000.0, 1000.0, False))
paper.book_loss("2024-01-01", -30.0)
paper.book_loss("2024-01-01", 10.0)
test_eq((paper.loss_on("2024-01-01"), paper.loss_on("2024-01-02")), (20.0, 0.0))
back = Book.from_dict(json.loads(json.dumps(paper.to_dict())), SimulatedClient.restore(paper.to_dict()["client"]))
test_eq((back.key, back.daily_loss, back.portfolio.to_dict(), back.busy()), (paper.key, [ "2024-01-01", 20.0],
                                                                             paper.portfolio.to_dict(), False))
test_fail(lambda: new_book(s, "live"), contains="a live book of crypto_spot needs its live venue client")
