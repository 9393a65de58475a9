# %% [markdown]
# # Broker interface
#
# > `ExecutionClient`: what the router and the engine need from a venue — submit, cancel, look up, positions, protective levels and the stream of executions — implemented by the paper `SimulatedClient` now and by the Bybit and IBKR clients next.

# %%
#| default_exp brokers.base

# %% [markdown]
# One interface for every venue keeps the router venue-blind (DESIGN §6). Its shape follows what the
# venues really offer, so the live clients are thin:
#
# - **submit / cancel / lookup** by our `client_order_id` (Bybit `orderLinkId`, IB `orderRef`). `lookup`
#   is how an unknown outcome is resolved: the router asks the venue about the id it recorded, and sends
#   again under the *same* id only when the venue never saw it.
# - **protection** lives with the position (Bybit V5 `/v5/position/trading-stop`, an IB bracket's
#   children, the paper client's levels): `Protection` says how far from the entry the stop-loss and
#   take-profit sit; `levels` turns it into prices at the fill, with the backtester's arithmetic
#   (`stop_level_nb`), so paper and backtest stops sit at the same price.
# - **poll** returns what happened at the venue since the last poll: `Execution`s (a fill and why —
#   an order, or a protective exit the venue triggered), cancellations, rejections and, for perpetuals,
#   `FundingPayment`s (the venue moves wallet money at each settlement; the portfolio must book it too).
#
# Clients are synchronous: pybit's HTTP calls are, and ib_async offers blocking wrappers; the engine
# calls them between bars.

# %%
#| export
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from tradingbot.execution._nb import stop_price_nb, target_price_nb
from tradingbot.execution.enums import Reason
from tradingbot.execution.model import Fill, Order, OrderCancelled, OrderIntent, OrderRejected

# %%
#| hide
from fastcore.test import test_eq, test_fail

# %%
#| export
ACK_STATUSES = ("submitted", "filled", "rejected")


@dataclass(frozen=True)
class Capabilities:
    "What a venue client can do; the router and the SL/TP manager adapt to it."
    venue: str  # 'paper', 'bybit' or 'ibkr'
    live: bool  # True when orders move real money
    attached_protection: bool  # SL/TP ride with the position at the venue (set once, kept by the venue)
    reduce_only: bool = True  # honours reduce-only orders
    shorting: bool = False  # may open short positions
    order_types: tuple[str, ...] = ("market", "limit", "stop")


@dataclass(frozen=True)
class Ack:
    "The venue's immediate answer to a submit."
    client_order_id: str
    status: str  # one of ACK_STATUSES
    reason: str = ""  # why it was rejected
    broker_order_id: str | None = None

    def __post_init__(self):
        if self.status not in ACK_STATUSES:
            raise ValueError(f"Ack.status must be one of {ACK_STATUSES}, got {self.status!r}")


@dataclass(frozen=True)
class Execution:
    "One fill as a venue reports it, with the reason it happened."
    fill: Fill
    reason: Reason = Reason.ORDER  # an order's fill, or the protective exit the venue triggered

    def __post_init__(self):
        object.__setattr__(self, "reason", Reason.parse(self.reason, "Execution.reason"))


@dataclass(frozen=True)
class FundingPayment:
    "A funding settlement on a perpetual position, as the venue books it in the wallet."
    symbol: str
    amount: float  # received (+) or paid (-), in the quote currency
    ts: str  # settlement time, ISO 8601 UTC

    def __post_init__(self):
        if not math.isfinite(self.amount):
            raise ValueError(f"FundingPayment.amount must be finite, got {self.amount!r}")


# %%
test_eq(FundingPayment("BTCUSDT", -0.25, "2024-01-01T08:00:00+00:00").amount, -0.25)
test_fail(lambda: FundingPayment("BTCUSDT", float("nan"), "2024-01-01T08:00:00+00:00"), contains="finite")


# %% [markdown]
# `Protection` is how far protective levels sit from the entry: a distance in price units (the ATR stop
# of the rule strategies) and/or a percentage. `levels` places them by the one stop rule of the fill
# model (`stop_price_nb`, `target_price_nb`): with both given, the tighter stop and the nearer target —
# so a level computed here equals the backtester's to the last bit, and no venue, manager or check
# reads a stop any other way.

# %%
#| export
def _optional_positive(name: str, value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0 or None, got {value!r}")
    return float(value)


def _nan(x: float | None) -> float:
    return np.nan if x is None else x


def _level(x: float) -> float | None:
    return None if x != x else float(x)


@dataclass(frozen=True)
class Protection:
    "Where a position's stop-loss and take-profit sit relative to its entry price."
    sl_distance: float | None = None  # price units
    sl_pct: float | None = None  # percent of the entry price (with a distance too: the tighter)
    tp_distance: float | None = None  # price units
    tp_pct: float | None = None  # percent of the entry price (with a distance too: the nearer)

    def __post_init__(self):
        for name in ("sl_distance", "sl_pct", "tp_distance", "tp_pct"):
            object.__setattr__(self, name, _optional_positive(name, getattr(self, name)))

    def levels(self, direction: int,  # +1 long, -1 short
               entry: float,  # average entry price
               ) -> tuple[float | None, float | None]:  # (stop-loss price, take-profit price)
        "The protective prices of a position entered at `entry`, by the one stop rule."
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {direction!r}")
        sl_frac = _nan(self.sl_pct) / 100 if self.sl_pct is not None else np.nan
        tp_frac = _nan(self.tp_pct) / 100 if self.tp_pct is not None else np.nan
        return (_level(stop_price_nb(direction, float(entry), sl_frac, _nan(self.sl_distance))),
                _level(target_price_nb(direction, float(entry), tp_frac, _nan(self.tp_distance))))

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("sl_distance", "sl_pct", "tp_distance", "tp_pct")}

    @classmethod
    def from_dict(cls, d: dict) -> Protection:
        return cls(**d)


def protection_of(intent: OrderIntent) -> Protection:
    "The protection an intent asks for: its `sl_distance` and/or `sl_pct`; `tp_schema` pct or distance."
    tp = intent.tp_schema or {}
    kind = tp.get("type")
    if kind not in (None, "pct", "distance"):
        raise ValueError(f"tp_schema type {kind!r} is not one a venue can hold; the strategy resolves it to "
                         "{'type': 'pct', 'pct': x} or {'type': 'distance', 'distance': x} before routing")
    return Protection(sl_distance=intent.sl_distance, sl_pct=intent.sl_pct,
                      tp_distance=tp.get("distance") if kind == "distance" else None,
                      tp_pct=tp.get("pct") if kind == "pct" else None)


# %%
p = Protection(sl_pct=2.0, tp_pct=4.0)
test_eq(p.levels(1, 100.0), (98.0, 104.0))
test_eq(p.levels(-1, 100.0), (102.0, 96.0))
test_eq(Protection(sl_distance=3.0, sl_pct=2.0).levels(1, 100.0), (98.0, None))  # both: the tighter stop
test_eq(Protection(sl_distance=1.5, sl_pct=2.0, tp_distance=3.0, tp_pct=4.0).levels(1, 100.0), (98.5, 103.0))
test_eq(Protection().levels(1, 100.0), (None, None))
test_fail(lambda: Protection(sl_pct=-1.0), contains="sl_pct must be a finite number > 0")
test_fail(lambda: p.levels(0, 100.0), contains="direction must be +1 or -1")
intent = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=2.5, strategy_id="rsi2", qty=0.01,
                     tp_schema={"type": "pct", "pct": 5.0}, sl_distance=800.0)
test_eq(protection_of(intent), Protection(sl_distance=800.0, sl_pct=2.5, tp_pct=5.0))
test_eq(Protection.from_dict(protection_of(intent).to_dict()), protection_of(intent))
test_fail(lambda: protection_of(OrderIntent("forex", "EURUSD", "buy", 1.0, "x", qty=1.0, tp_schema={"type": "atr"})),
          contains="resolves it to")

# %% [markdown]
# The stop-level arithmetic is the backtester's, bit for bit:

# %%
from tradingbot.execution._nb import stop_level_nb

for ref, pct in [(30123.45, 2.0), (1.08765, 0.7), (99.99, 13.3)]:
    assert Protection(sl_pct=pct).levels(1, ref)[0] == stop_level_nb(1, ref, np.float64(pct) / 100)
    assert Protection(tp_pct=pct).levels(-1, ref)[1] == stop_level_nb(1, ref, np.float64(pct) / 100)
    assert Protection(sl_distance=pct).levels(-1, ref)[0] == ref + pct


# %%
#| export
class ExecutionClient(ABC):
    "A venue the router can send orders to (paper, Bybit, IBKR)."
    capabilities: Capabilities
    asset: str  # the asset class this client trades

    @abstractmethod
    def submit(self, order: Order) -> Ack:
        "Send `order` (its intent carries side, qty and protection; `reduce_only` is honoured)."

    @abstractmethod
    def cancel(self, client_order_id: str) -> bool:
        "Cancel a working order; False when the venue has no working order with this id."

    @abstractmethod
    def lookup(self, client_order_id: str) -> str | None:
        "The venue's status of an order id ('submitted', 'partially_filled', 'filled', 'cancelled', 'rejected'), None if never received."

    @abstractmethod
    def positions(self) -> dict[str, float]:
        "Open positions at the venue: symbol -> signed quantity."

    @abstractmethod
    def protection(self, symbol: str) -> tuple[float | None, float | None]:
        "The (stop-loss, take-profit) prices the venue holds for the position in `symbol`."

    @abstractmethod
    def set_protection(self, symbol: str, sl: float | None, tp: float | None) -> None:
        "Attach or move the position's protective levels at the venue."

    @abstractmethod
    def poll(self) -> list[Execution | FundingPayment | OrderCancelled | OrderRejected]:
        "What happened at the venue since the last poll, in order."

    def on_bar(self, bar) -> None:
        "A closed bar of one of the venue's symbols: a real venue moves on its own (nothing to do); the paper venue works its orders."

    def close(self) -> None:
        "Release connections (nothing by default)."


# %%
class _Incomplete(ExecutionClient):
    def submit(self, order): ...

test_fail(lambda: _Incomplete(), contains="abstract")
