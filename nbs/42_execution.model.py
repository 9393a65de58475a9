# %% [markdown]
# # Execution domain model
#
# > Immutable domain objects of the execution path — `OrderIntent`, `Order`, `Fill`, `Position` and past-tense events — with JSON round trips and deterministic client order ids.

# %%
#| default_exp execution.model

# %% [markdown]
# Strategies emit `OrderIntent`s; the router turns one into an `Order` with a deterministic
# `client_order_id`; brokers report `Fill`s; the portfolio keeps `Position`s; everything that happened
# is an event named in the past tense. All of them are frozen dataclasses that check their own values
# on construction, so a malformed object never travels further than the line that built it, and all of
# them go to and from plain JSON (`to_dict` / `from_dict`, timestamps as ISO-8601 UTC strings) — the
# order store and the logs keep exactly that form.
#
# Units follow the configuration: `sl_pct` is a percentage of the entry price (2.0 means 2 %), and
# `sl_distance` a distance in price units (an ATR stop); where both are given the tighter one is the
# stop (`execution._nb.stop_price_nb`, the one stop rule). An exit carries no stop at all. The
# 15 % cap on stop distance is the risk module's decision, not the model's: the model only refuses what
# can never be meaningful (a non-positive stop).

# %%
#| export
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar

from tradingbot.execution.enums import OrderType, Side

# %%
#| hide
from fastcore.test import test_eq, test_fail
from hypothesis import given, settings
from hypothesis import strategies as st

# %% [markdown]
# ## Vocabulary and timestamps

# %%
#| export
ASSETS = ("crypto_spot", "crypto_futures", "forex", "options")
SIDES = tuple(Side)  # the vocabulary of `tradingbot.execution.enums`; members are their strings ('buy', 'sell')
ORDER_TYPES = tuple(OrderType)
ORDER_STATUSES = ("new", "submitted", "partially_filled", "filled", "cancelled", "rejected", "unknown")
OPEN_STATUSES = ("new", "submitted", "partially_filled", "unknown")  # 'unknown' must be resolved at the broker
MODES = ("paper", "live")


def _one_of(name: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(allowed)}")


def _member(kind: type, name: str, value):
    "The enum member `value` names (strings only: a code number is no field value), or the model's error."
    if not isinstance(value, str):
        raise ValueError(f"{name}={value!r} is not one of {', '.join(kind)}")
    try:
        return kind.parse(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(kind)}") from None


def _positive(name: str, value, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _json_able(name: str, value) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be JSON-serialisable (str/number/bool/None/list/dict): {exc}") from None


# %%
#| export
def utc(ts: datetime | str,  # tz-aware datetime (pandas Timestamp works) or ISO-8601 string with offset
        ) -> datetime:
    "`ts` as a UTC datetime; naive times are refused because their zone is a guess."
    if isinstance(ts, str):
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            raise ValueError(f"timestamp {ts!r} is not ISO-8601") from None
    if not isinstance(ts, datetime):
        raise TypeError(f"timestamp must be a datetime or ISO-8601 string, got {type(ts).__name__}")
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no time zone; pass UTC (e.g. '...+00:00')")
    return ts.astimezone(timezone.utc)


def utc_now() -> datetime:
    "The current time in UTC."
    return datetime.now(timezone.utc)


# %%
t = utc("2024-03-01T10:00:00+02:00")
test_eq((t.hour, t.utcoffset().total_seconds()), (8, 0))
test_eq(utc("2024-03-01T08:00:00Z"), t)
test_fail(lambda: utc(datetime(2024, 3, 1)), contains="has no time zone")
test_fail(lambda: utc("yesterday"), contains="not ISO-8601")


# %% [markdown]
# ## JSON both ways
# One mixin gives every record `to_dict` and `from_dict`. Each class names its timestamp fields
# (`_TIMES`) and its nested records (`_NESTED`); construction normalises timestamps to UTC, so an ISO
# string and a datetime build equal objects. Unknown keys are refused rather than dropped: a silently
# ignored field in a stored order is a bug that surfaces months later.

# %%
#| export
class Record:
    "Mixin: JSON-able frozen dataclass with UTC timestamps."
    __slots__ = ()
    _TIMES: ClassVar[tuple[str, ...]] = ()
    _NESTED: ClassVar[dict[str, type]] = {}

    def _normalise(self) -> None:
        for name in self._TIMES:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value))

    def to_dict(self) -> dict:
        "Plain JSON-able dict (timestamps as ISO-8601 UTC)."
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Record):
                value = value.to_dict()
            elif isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, dict):
                value = json.loads(json.dumps(value))  # a copy the caller may mutate freely
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict):
        "Rebuild from `to_dict` output; unknown keys are an error."
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown field(s) {sorted(unknown)}; expected {sorted(names)}")
        kwargs = {k: cls._NESTED[k].from_dict(v) if k in cls._NESTED and isinstance(v, dict) else v
                  for k, v in data.items()}
        return cls(**kwargs)


# %% [markdown]
# ## OrderIntent
# What a strategy wants (seed 003 §23): exactly one of `notional` (quote currency) or `qty` (base
# units) — the router sizes notionals, a closing order knows its quantity.

# %%
#| export
@dataclass(frozen=True, slots=True)
class OrderIntent(Record):
    "A strategy's wish to trade, before risk, budget and exposure checks."
    asset: str  # crypto_spot, crypto_futures, forex or options
    symbol: str  # venue symbol, e.g. BTCUSDT
    side: str  # buy or sell
    sl_pct: float | None  # stop distance in percent of the entry price (None: none, e.g. an exit)
    strategy_id: str  # id in strategies.json
    notional: float | None = None  # quote-currency size (exclusive with qty)
    qty: float | None = None  # base-unit size (exclusive with notional)
    tp_schema: dict = field(default_factory=dict)  # e.g. {"type": "atr", "mult": 2.0}
    score: float = 0.0  # signal strength
    meta: dict = field(default_factory=dict)  # free JSON-able context (source, model version, ...)
    sl_distance: float | None = None  # stop distance in price units (an ATR stop); the tighter of the two is the stop

    def __post_init__(self):
        _one_of("asset", self.asset, ASSETS)
        object.__setattr__(self, "side", _member(Side, "side", self.side))
        if not self.symbol or not isinstance(self.symbol, str):
            raise ValueError(f"symbol must be a non-empty string, got {self.symbol!r}")
        if not self.strategy_id or not isinstance(self.strategy_id, str):
            raise ValueError(f"strategy_id must be a non-empty string, got {self.strategy_id!r}")
        if (self.notional is None) == (self.qty is None):
            raise ValueError(f"give exactly one of notional or qty (got notional={self.notional!r}, qty={self.qty!r})")
        _positive("notional", self.notional, optional=True)
        _positive("qty", self.qty, optional=True)
        _positive("sl_pct", self.sl_pct, optional=True)
        _positive("sl_distance", self.sl_distance, optional=True)
        if not isinstance(self.score, (int, float)) or not math.isfinite(self.score):
            raise ValueError(f"score must be a finite number, got {self.score!r}")
        _json_able("tp_schema", self.tp_schema)
        _json_able("meta", self.meta)


# %%
intent = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=1.5, strategy_id="rsi2", notional=100.0,
                     tp_schema={"type": "atr", "mult": 2.0}, score=0.73, meta={"source": "RL"})
test_eq(OrderIntent.from_dict(intent.to_dict()), intent)
test_eq(json.loads(json.dumps(intent.to_dict()))["tp_schema"], {"type": "atr", "mult": 2.0})
mk = lambda **kw: OrderIntent(**{**intent.to_dict(), **kw})  # noqa: E731
test_fail(lambda: mk(asset="stocks"), contains="asset='stocks' is not one of crypto_spot")
test_fail(lambda: mk(side="long"), contains="side='long' is not one of buy, sell")
test_fail(lambda: mk(qty=0.1), contains="exactly one of notional or qty")
test_fail(lambda: mk(notional=None), contains="exactly one of notional or qty")
test_fail(lambda: mk(notional=-5.0), contains="notional must be a finite number > 0")
test_fail(lambda: mk(sl_pct=0), contains="sl_pct must be a finite number > 0")
test_eq((mk(sl_pct=None).sl_pct, mk(sl_distance=800.0).sl_distance, intent.side is Side.BUY), (None, 800.0, True))
test_fail(lambda: mk(meta={"when": datetime.now()}), contains="meta must be JSON-serialisable")
test_fail(lambda: OrderIntent.from_dict({**intent.to_dict(), "leverage": 5}), contains="unknown field(s) ['leverage']")

# %% [markdown]
# ## Client order ids
# Deterministic from (strategy, symbol, decision bar time, sequence), so a restart that re-derives
# the same decision finds the order it already sent instead of sending it again. Bybit allows 36
# characters of `[A-Za-z0-9_-]`: a readable prefix (strategy and symbol, 8 characters each) plus 16 hex
# characters of a blake2b digest of the full inputs — 64 bits, so collisions among the few million ids a
# deployment ever makes are out of reach. The decision time is hashed in UTC, so the same instant in
# another time zone yields the same id.

# %%
#| export
CLIENT_ID_MAX = 36
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def _slug(text: str, n: int = 8) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)[:n] or "x"


def client_order_id(strategy_id: str,  # strategy id
                    symbol: str,  # venue symbol
                    decision_ts: datetime | str,  # close time of the bar the decision was made on (tz-aware)
                    sequence: int = 0,  # n-th order of this decision (>= 0)
                    mode: str = "paper",  # the book it is for: paper and live orders of one decision differ
                    ) -> str:
    "Deterministic, venue-safe client order id (<= 36 chars of [A-Za-z0-9_-])."
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ValueError(f"sequence must be an int >= 0, got {sequence!r}")
    _one_of("mode", mode, MODES)
    parts = [strategy_id, symbol, utc(decision_ts).isoformat(), sequence] + ([mode] if mode != "paper" else [])
    key = json.dumps(parts)
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    return f"{_slug(strategy_id)}-{_slug(symbol)}-{digest}"


def check_client_order_id(value: str) -> None:
    "Refuse an id the venues would reject."
    if not isinstance(value, str) or not _CLIENT_ID_RE.match(value):
        raise ValueError(f"client_order_id {value!r} must be 1-{CLIENT_ID_MAX} characters of [A-Za-z0-9_-]")


# %%
cid = client_order_id("rsi2_long", "BTCUSDT", "2024-03-01T08:00:00Z", 0)
test_eq(cid, client_order_id("rsi2_long", "BTCUSDT", "2024-03-01T10:00:00+02:00", 0))  # same instant
test_eq(cid.startswith("rsi2long-BTCUSDT-"), True)
test_eq(cid == client_order_id("rsi2_long", "BTCUSDT", "2024-03-01T08:00:00Z", 1), False)
test_eq(cid == client_order_id("rsi2_long", "BTCUSDT", "2024-03-01T08:00:00Z", 0, mode="live"), False)  # its own id
check_client_order_id(cid)
test_fail(lambda: client_order_id("s", "X", "2024-03-01T08:00:00Z", -1), contains="sequence must be an int >= 0")
test_fail(lambda: check_client_order_id("a" * 37), contains="must be 1-36 characters")
test_fail(lambda: check_client_order_id("bad id!"), contains="must be 1-36 characters")

# %% [markdown]
# No collisions and the venue's bound hold over many inputs, including long and exotic names that
# share a prefix after slugging:

# %%
base = datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp()
inputs = {(s, sym, int(base) + 3600 * h, q) for s in ("rsi2", "rsi-2", "rsi_2", "ibs" * 20, "ü-ml")
          for sym in ("BTCUSDT", "BTCUSDT.P", "EUR.USD", "ETHUSDT") for h in range(250) for q in range(3)}
ids = {client_order_id(s, sym, datetime.fromtimestamp(t, timezone.utc), q) for s, sym, t, q in inputs}
test_eq(len(ids), len(inputs))
test_eq(max(map(len, ids)) <= CLIENT_ID_MAX, True)
for i in ids:
    check_client_order_id(i)


# %% [markdown]
# ## Order
# The router's order: the intent it came from, how it is to be executed, and where it stands. The
# store keeps the status and the broker's id; the rest never changes.

# %%
#| export
@dataclass(frozen=True, slots=True)
class Order(Record):
    "An order as recorded before, and tracked after, the broker call."
    client_order_id: str  # see `client_order_id`
    intent: OrderIntent  # what the strategy asked for
    order_type: str = "market"  # market, limit, stop or stop_limit
    limit_price: float | None = None  # required for limit and stop-limit orders
    stop_price: float | None = None  # required for stop and stop-limit orders
    status: str = "new"  # one of ORDER_STATUSES
    created_at: datetime | str = field(default_factory=utc_now)
    broker_order_id: str | None = None  # the venue's id, once known
    reduce_only: bool = False  # may only shrink or close a position (exits, close-only mode)
    mode: str = "paper"  # the book it trades for: paper, or live (a real venue)
    _TIMES = ("created_at",)
    _NESTED = {"intent": OrderIntent}

    def __post_init__(self):
        check_client_order_id(self.client_order_id)
        if not isinstance(self.intent, OrderIntent):
            raise TypeError(f"intent must be an OrderIntent, got {type(self.intent).__name__}")
        object.__setattr__(self, "order_type", _member(OrderType, "order_type", self.order_type))
        _one_of("status", self.status, ORDER_STATUSES)
        _positive("limit_price", self.limit_price, optional=self.order_type not in ("limit", "stop_limit"))
        _positive("stop_price", self.stop_price, optional=self.order_type not in ("stop", "stop_limit"))
        if not isinstance(self.reduce_only, bool):
            raise ValueError(f"reduce_only must be True or False, got {self.reduce_only!r}")
        _one_of("mode", self.mode, MODES)
        self._normalise()

    @property
    def is_open(self) -> bool:
        "Still working (or of unknown outcome) at the broker."
        return self.status in OPEN_STATUSES


# %%
order = Order(cid, intent, "limit", limit_price=61000.0, created_at="2024-03-01T08:00:01Z")
test_eq(Order.from_dict(order.to_dict()), order)
test_eq(order.to_dict()["created_at"], "2024-03-01T08:00:01+00:00")
test_eq(order.to_dict()["intent"]["symbol"], "BTCUSDT")
test_eq(order.is_open, True)
test_fail(lambda: Order(cid, intent, "limit"), contains="limit_price must be a finite number > 0")
test_fail(lambda: Order(cid, intent, status="done"), contains="status='done' is not one of new")
test_fail(lambda: Order("x" * 40, intent), contains="must be 1-36 characters")


# %% [markdown]
# ## Fill and Position
# A `Fill` carries the venue's execution id, unique per fill: it is what makes a fill count once
# however many times the broker reports it. `fee` may be negative (maker rebates). A `Position`
# follows seed 003 §24 with a signed quantity (short < 0).

# %%
#| export
@dataclass(frozen=True, slots=True)
class Fill(Record):
    "One execution reported by a broker (or the fill model)."
    exec_id: str  # unique per fill at the venue
    client_order_id: str  # the order it belongs to
    symbol: str
    side: str  # buy or sell
    qty: float  # > 0
    price: float  # > 0
    fee: float  # quote currency; negative is a rebate
    ts: datetime | str  # execution time (UTC)
    maker: bool = False  # liquidity provider?
    _TIMES = ("ts",)

    def __post_init__(self):
        if not self.exec_id or not isinstance(self.exec_id, str):
            raise ValueError(f"exec_id must be a non-empty string, got {self.exec_id!r}")
        object.__setattr__(self, "side", _member(Side, "side", self.side))
        _positive("qty", self.qty)
        _positive("price", self.price)
        if not isinstance(self.fee, (int, float)) or not math.isfinite(self.fee):
            raise ValueError(f"fee must be a finite number, got {self.fee!r}")
        self._normalise()


@dataclass(frozen=True, slots=True)
class Position(Record):
    "An open position (seed 003 §24); qty is signed."
    id: str
    asset: str
    symbol: str
    qty: float  # > 0 long, < 0 short
    entry: float  # average entry price
    sl: float | None  # stop-loss price
    tp: float | None  # take-profit price
    mode: str  # paper or live
    opened_at: datetime | str
    _TIMES = ("opened_at",)

    def __post_init__(self):
        _one_of("asset", self.asset, ASSETS)
        _one_of("mode", self.mode, MODES)
        if not isinstance(self.qty, (int, float)) or not math.isfinite(self.qty) or self.qty == 0:
            raise ValueError(f"qty must be a finite non-zero number (signed), got {self.qty!r}")
        _positive("entry", self.entry)
        _positive("sl", self.sl, optional=True)
        _positive("tp", self.tp, optional=True)
        self._normalise()


# %%
fill = Fill("e-1", cid, "BTCUSDT", "buy", 0.0016, 61000.0, -0.01, "2024-03-01T08:00:02Z", maker=True)
test_eq(Fill.from_dict(fill.to_dict()), fill)
test_fail(lambda: Fill("e-2", cid, "BTCUSDT", "buy", 0.0, 61000.0, 0.0, "2024-03-01T08:00:02Z"), contains="qty must be")
pos = Position("p-1", "crypto_futures", "BTCUSDT", -0.5, 61000.0, 62000.0, None, "paper", "2024-03-01T08:00:02Z")
test_eq(Position.from_dict(pos.to_dict()), pos)
test_fail(lambda: Position.from_dict({**pos.to_dict(), "mode": "demo"}), contains="mode='demo' is not one of paper, live")
test_fail(lambda: Position.from_dict({**pos.to_dict(), "qty": 0}), contains="qty must be a finite non-zero")

# %% [markdown]
# ## Events
# Immutable facts in the past tense. `to_dict` adds the class name under `"event"`, and
# `event_from_dict` rebuilds the right class from it — the order store's event log and the JSON-lines
# logs share this form.

# %%
#| export
EVENTS: dict[str, type] = {}


def _event(cls):
    "Register an event class by name (for `event_from_dict`)."
    EVENTS[cls.__name__] = cls
    return cls


@dataclass(frozen=True, slots=True)
class Event(Record):
    "Base of all events: something that happened at `ts`."
    ts: datetime | str
    _TIMES = ("ts",)

    def __post_init__(self):
        self._normalise()

    @property
    def name(self) -> str:
        "The event's name (its class)."
        return type(self).__name__

    def to_dict(self) -> dict:
        "JSON-able dict with the event name under 'event'."
        return {"event": self.name, **Record.to_dict(self)}


def event_from_dict(data: dict) -> Event:
    "Rebuild an event from its `to_dict` form."
    name = data.get("event")
    if name not in EVENTS:
        raise ValueError(f"unknown event {name!r}; known: {', '.join(sorted(EVENTS))}")
    return EVENTS[name].from_dict({k: v for k, v in data.items() if k != "event"})


# %%
#| export
@_event
@dataclass(frozen=True, slots=True)
class OrderSubmitted(Event):
    "The broker accepted the order."
    client_order_id: str = ""
    broker_order_id: str | None = None


@_event
@dataclass(frozen=True, slots=True)
class OrderFilled(Event):
    "A fill arrived for an order."
    fill: Fill | None = None
    _NESTED = {"fill": Fill}


@_event
@dataclass(frozen=True, slots=True)
class OrderRejected(Event):
    "The broker, or a pre-trade check, refused the order."
    client_order_id: str = ""
    reason: str = ""


@_event
@dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    "The order was cancelled."
    client_order_id: str = ""
    reason: str = ""


@_event
@dataclass(frozen=True, slots=True)
class PositionOpened(Event):
    "A position was opened."
    position: Position | None = None
    _NESTED = {"position": Position}


@_event
@dataclass(frozen=True, slots=True)
class PositionClosed(Event):
    "A position was closed."
    position_id: str = ""
    symbol: str = ""
    exit_price: float = 0.0
    pnl_realized: float = 0.0


@_event
@dataclass(frozen=True, slots=True)
class StopMoved(Event):
    "A position's stop-loss was moved."
    position_id: str = ""
    symbol: str = ""
    old_sl: float | None = None
    new_sl: float | None = None


# %%
ts = "2024-03-01T08:00:02Z"
evs = [OrderSubmitted(ts, cid, "b-9"), OrderFilled(ts, fill), OrderRejected(ts, cid, "min notional"),
       OrderCancelled(ts, cid), PositionOpened(ts, pos), PositionClosed(ts, "p-1", "BTCUSDT", 60500.0, 250.0),
       StopMoved(ts, "p-1", "BTCUSDT", 62000.0, 61500.0)]
for ev in evs:
    test_eq(event_from_dict(json.loads(json.dumps(ev.to_dict()))), ev)
test_eq(evs[1].to_dict()["event"], "OrderFilled")
test_eq(event_from_dict(evs[1].to_dict()).fill.exec_id, "e-1")
test_fail(lambda: event_from_dict({"event": "OrderExploded", "ts": ts}), contains="unknown event 'OrderExploded'")

# %% [markdown]
# Round trips hold for arbitrary valid values, not just the examples above:

# %%
finite = st.floats(min_value=1e-9, max_value=1e12, allow_nan=False)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc))
names = st.text(min_size=1, max_size=20)
intents = st.builds(OrderIntent, st.sampled_from(ASSETS), names, st.sampled_from(SIDES), finite, names,
                    notional=finite, score=st.floats(-1e6, 1e6),
                    meta=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3))
fills = st.builds(Fill, names, names, names, st.sampled_from(SIDES), finite, finite, st.floats(-1e3, 1e3), times,
                  st.booleans())


@settings(max_examples=60, deadline=None)
@given(intents, times, fills)
def round_trips(intent, t, fill):
    order = Order(client_order_id(intent.strategy_id, intent.symbol, t), intent, created_at=t)
    test_eq(Order.from_dict(json.loads(json.dumps(order.to_dict()))), order)
    test_eq(event_from_dict(json.loads(json.dumps(OrderFilled(t, fill).to_dict()))), OrderFilled(t, fill))


round_trips()
