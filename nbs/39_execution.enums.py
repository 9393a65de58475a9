# %% [markdown]
# # Vocabulary
#
# > The one vocabulary of orders and fills — `Side`, `OrderType`, `TimeInForce`, exit `Reason`, and the fill model's `Status`, `Info` and `Arrival` — as string-valued enums that the domain model, the brokers and the result frames speak, each member carrying the integer code the numba kernels read.

# %%
#| default_exp execution.enums

# %% [markdown]
# People and JSON say `"buy"`, `"limit"`, `"IOC"`, `"stop_loss"`; numba kernels compare integers.
# Each enum here is the single definition of both: a member *is* its string (`Side.BUY == "buy"`, it
# serialises to `"buy"`), and `Side.BUY.code` is the integer the kernels use (`+1`). The kernels
# import integer namespaces generated from the same enums (`SIDE.BUY`, a compile-time constant inside
# `@njit` code, the way vectorbt's enums work), so a name and its code cannot drift apart, and there is
# no second table of order types anywhere.

# %%
#| export
from __future__ import annotations

import enum
from collections import namedtuple
from typing import Any

import numpy as np

# %%
#| hide
import json

from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## A string with a code
# `Coded` members are built from `(name, code)` pairs. `parse` is how every public function accepts a
# user's value: a member, its string, or its integer code — anything else is an error that lists the
# valid names.

# %%
#| export
class Coded(str, enum.Enum):
    "A string-valued enum whose members also carry the integer code the numba kernels use."

    def __new__(cls, value: str, code: int):
        member = str.__new__(cls, value)
        member._value_ = value
        member.code = code
        return member

    __str__ = str.__str__  # "buy", not "Side.BUY": members read as the strings they are
    __format__ = str.__format__

    @classmethod
    def parse(cls, value: Any,  # a member, its string, or its integer code
              what: str | None = None,  # what the value is, for the error message (default: the enum's name)
              ) -> Coded:
        "The member `value` names; a ValueError listing the valid names otherwise."
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if member.value == value:
                    return member
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            for member in cls:
                if member.code == int(value):
                    return member
        label = what or cls.__name__
        raise ValueError(f"unknown {label} {value!r}; valid: {', '.join(m.value for m in cls)}")

    @classmethod
    def of(cls, code: int,  # an integer code from a kernel
           ) -> Coded:
        "The member with integer `code`."
        return cls.parse(int(code))

    @classmethod
    def namespace(cls):
        "The codes as a NamedTuple instance (`SIDE.BUY == 1`): what numba kernels read as constants."
        fields = [m.name for m in cls]
        return namedtuple(f"_{cls.__name__}Codes", fields)(*(m.code for m in cls))


# %% [markdown]
# ## Orders

# %%
#| export
class Side(Coded):
    "Which way an order trades."
    BUY = "buy", 1
    SELL = "sell", -1

    @property
    def sign(self) -> int:
        "+1 for a buy, -1 for a sell."
        return self.code


class OrderType(Coded):
    "How an order meets the market."
    MARKET = "market", 0
    LIMIT = "limit", 1
    STOP = "stop", 2  # stop-market: a market order once the stop price trades
    STOP_LIMIT = "stop_limit", 3  # a limit order once the stop price trades


class TimeInForce(Coded):
    "How long an order works."
    GTC = "GTC", 0  # good till cancelled: rests, and a capped remainder carries to the next bar
    IOC = "IOC", 1  # immediate or cancel: what cannot fill on arrival is cancelled
    FOK = "FOK", 2  # fill or kill: all on arrival, or nothing


class Reason(Coded):
    "Why an order was placed, or why a fill happened."
    SIGNAL = "signal", 0  # a strategy's entry or exit signal
    ORDER = "order", 1  # an order given directly (per-bar orders, the router)
    STOP_LOSS = "stop_loss", 2
    TAKE_PROFIT = "take_profit", 3
    TRAILING_STOP = "trailing_stop", 4
    TIME_STOP = "time_stop", 5
    CLOSE_ALL = "close_all", 6  # the operator's stop with mode close_all

    @property
    def protective(self) -> bool:
        "True for the exits the venue triggers on its own (stop-loss, take-profit, trailing stop)."
        return self in (Reason.STOP_LOSS, Reason.TAKE_PROFIT, Reason.TRAILING_STOP)


class Sizing(Coded):
    "How a backtest sizes an entry."
    CASH = "cash", 0  # all free cash (vectorbt's size=inf): research only
    NOTIONAL = "notional", 1  # a fixed amount of money per entry
    EQUITY = "equity", 2  # a fraction of equity at the decision
    RISK = "risk", 3  # the paper and live rule: `execution.risk` ($10 rule, tiers, drawdown cut, caps, lots)


# %% [markdown]
# ## The fill model's outcomes
# `Status` is where one order stands after a bar, `Info` why it was cancelled or rejected (the
# backtester's `status_info` column), `Arrival` where an order meets a bar.

# %%
#| export
class Status(Coded):
    "Where an order stands after a bar of the fill model."
    OPEN = "open", 0  # still working
    FILLED = "filled", 1
    CANCELLED = "cancelled", 2
    REJECTED = "rejected", 3


class Info(Coded):
    "Why an order was cancelled or rejected."
    NONE = "none", 0
    POST_ONLY = "post_only", 1  # a post-only limit would have crossed the spread
    NOT_MARKETABLE = "not_marketable", 2  # an IOC/FOK limit that could not fill on arrival
    IOC_REMAINDER = "ioc_remainder", 3  # the part of an IOC order beyond the volume cap
    FOK_UNFILLED = "fok_unfilled", 4  # a FOK order the volume cap could not fill whole
    NO_CASH = "no_cash", 5
    STOP_TOO_WIDE = "stop_too_wide", 6  # stop distance beyond SAFETY.MAX_STOP_LOSS_PCT
    REPLACED = "replaced", 7  # cancelled by a later decision
    NOTHING_TO_CLOSE = "nothing_to_close", 8  # an exit found the position already closed
    NO_STOP = "no_stop", 9  # risk sizing needs a stop-loss distance
    BELOW_MIN_SIZE = "below_min_size", 10  # rounded to the venue's lot it is below one lot or the minimum notional
    RISK_CAP = "risk_cap", 11  # a pre-trade cap (per-trade risk, position, per-asset exposure)
    DAILY_LOSS = "daily_loss", 12  # today's realised loss plus the trade's risk breaks the daily-loss cap
    NO_SHORTING = "no_shorting", 13  # a short entry where the venue allows no shorts
    STOP_BAND = "stop_band", 14  # the stop distance is outside the asset's band (sl_pct_min .. sl_pct_max)


class Arrival(Coded):
    "Where an order meets a bar."
    RESTING = "resting", 0  # at the market since an earlier bar
    OPEN = "open", 1  # reaches the market at this bar's open
    CLOSE = "close", 2  # reaches the market at this bar's close (nothing of the bar is left)


# %% [markdown]
# A member is its string and survives JSON as one; its code is what kernels see:

# %%
test_eq((Side.BUY == "buy", Side.SELL.code, Side.parse("sell"), Side.parse(-1)), (True, -1, Side.SELL, Side.SELL))
test_eq((str(OrderType.STOP_LIMIT), f"{TimeInForce.IOC}", json.dumps({"side": Side.BUY})),
        ("stop_limit", "IOC", '{"side": "buy"}'))
test_eq(Reason.of(5), Reason.TIME_STOP)
test_eq([r.protective for r in (Reason.STOP_LOSS, Reason.SIGNAL)], [True, False])
test_fail(lambda: OrderType.parse("stoplimit", "order type"),
          contains="unknown order type 'stoplimit'; valid: market, limit, stop, stop_limit")
test_fail(lambda: Side.parse(True), contains="unknown Side True")
SIDE = Side.namespace()
test_eq((SIDE.BUY, SIDE.SELL, Status.namespace().REJECTED), (1, -1, 3))
test_eq(len({m.code for m in Info}), len(Info))  # codes are unique
