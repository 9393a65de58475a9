# %% [markdown]
# # Order router
#
# > The only order placer: close-only and kill switch → risk → budget → exposure → the asset's client, failing fast with the reason; every order recorded in SQLite under a deterministic id before the client is called.

# %%
#| default_exp execution.router

# %% [markdown]
# Seed 002's call flow, in code. An opening order passes, in this order:
#
# 1. **mode** — the asset may open (no global or asset kill, not close-only, no `broker_desync`);
# 2. **risk** — a stop-loss is required and no farther than `SAFETY.MAX_STOP_LOSS_PCT` (the wider of the
#    intent's `sl_pct` and its `sl_distance` is checked, so no path can slip a wide stop through); the
#    notional is rounded to the venue's step and minimum; `valid_order` checks the per-trade, position,
#    per-asset and daily-loss caps;
# 3. **budget** — the asset's bucket covers the margin, which is then reserved under the order's id;
# 4. **exposure** — cluster, concurrency and total-exposure caps;
# 5. **record, then send** — the order goes to SQLite with status `new`, then to the client.
#
# Orders that only reduce a position (exits, time stops, close-all) skip 1–4: the kill switch must never
# stop a position from being closed. They are still recorded before they are sent.
#
# The id is `client_order_id(strategy, symbol, decision bar, sequence)`. If the store already holds it —
# a restart re-deciding a bar whose order went out before the crash — the router asks the client about
# that id: a venue that knows it is left alone; one that never saw it gets the order again *under the
# same id*. An order is never sent twice under two ids, and a venue that rejects duplicates (Bybit
# `orderLinkId`) protects us a second time.

# %%
#| export
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tradingbot.brokers.base import ExecutionClient
from tradingbot.execution.budget import Budget
from tradingbot.execution.exposure import ExposureConfig, can_open
from tradingbot.execution._nb import stop_distance_nb
from tradingbot.execution.model import Order, OrderIntent, client_order_id
from tradingbot.execution.risk import RiskConfig, round_size, valid_order
from tradingbot.execution.store import OrderStore
from tradingbot.jsonlog import log_event

# %%
#| hide
import tempfile
from pathlib import Path

from fastcore.test import test_eq, test_fail


# %%
#| export
@dataclass(frozen=True)
class RouteResult:
    "What became of an intent: sent (ok) or refused at `stage` with `reason`."
    ok: bool
    stage: str = ""  # mode, risk, budget, exposure, client, venue (already there)
    reason: str = ""
    order: Order | None = None


@dataclass
class BookContext:
    "What the checks need to know about the asset's book at the decision."
    equity: float  # the asset's equity in USD
    price: float  # reference price: the decision bar's close
    open_positions: list = field(default_factory=list)  # [{'symbol', 'notional'}] of the asset
    daily_realised_loss: float = 0.0  # today's realised loss (positive = lost)
    qty_step: float = 1e-8  # the venue's quantity step
    min_notional: float = 0.0  # the venue's minimum order value
    leverage: float = 1.0


class _AlwaysOpen:
    "Mode gate used when no controller is given (notebooks, tests)."

    def can_open(self, asset: str) -> tuple[bool, str]:
        return True, ""


# %% [markdown]
# The effective stop of an intent is where the one stop rule (`stop_distance_nb`) puts it: its
# `sl_distance` or its `sl_pct`, the tighter when it gives both — the level the venue will hold. Every
# check (the 15 % cap, the asset's band, the risk caps) reads that one number.

# %%
#| export
def effective_sl_pct(intent: OrderIntent,  # the intent
                     price: float,  # the reference price (the decision's close)
                     ) -> float:  # percent of `price` (NaN: the intent carries no stop)
    "The stop distance the order really carries, in percent of `price`."
    frac = intent.sl_pct / 100 if intent.sl_pct is not None else math.nan
    dist = intent.sl_distance if intent.sl_distance is not None else math.nan
    return 100 * float(stop_distance_nb(float(price), frac, dist)) / price


# %%
_i = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=2.0, strategy_id="rsi2", notional=100.0, sl_distance=3000.0)
test_eq(effective_sl_pct(_i, 10_000.0), 2.0)  # the tighter of 2 % and 30 %: the venue holds 2 %
test_eq(effective_sl_pct(dataclasses.replace(_i, sl_pct=None), 10_000.0), 30.0)
test_eq(math.isnan(effective_sl_pct(dataclasses.replace(_i, sl_pct=None, sl_distance=None), 10_000.0)), True)


# %%
#| export
class Router:
    "The one place orders are placed: checks, record-before-send, then the asset's client."

    def __init__(self, store: OrderStore, clients: dict[str, ExecutionClient],
                 controller=None,  # anything with can_open(asset) -> (ok, reason); None: always open
                 risk: RiskConfig | None = None, budget: Budget | None = None,
                 exposure: ExposureConfig | None = None,
                 audit=None,  # an AuditLog: every submission and refusal is chained into it
                 ):
        self.store, self.clients, self.controller = store, clients, controller or _AlwaysOpen()
        self.risk = risk or RiskConfig.from_config()
        self.budget, self.exposure, self.audit = budget, exposure or ExposureConfig.from_config(), audit

    def _client(self, asset: str) -> ExecutionClient:
        if asset not in self.clients:
            raise ValueError(f"no execution client for asset {asset!r}; configured: {', '.join(self.clients)}")
        return self.clients[asset]

    def _refuse(self, stage: str, reason: str, intent: OrderIntent, cid: str) -> RouteResult:
        if self.audit is not None:
            self.audit.append("order_refused", stage=stage, reason=reason, client_order_id=cid,
                              asset=intent.asset, symbol=intent.symbol, side=intent.side, strategy=intent.strategy_id)
        return RouteResult(False, stage, reason)


# %% [markdown]
# ### The checks of an opening order
# Each returns the sized intent (quantity rounded to the venue's step) or the stage and reason that refused it.

# %%
#| export
def _check_risk(self: Router, intent: OrderIntent, ctx: BookContext) -> tuple[OrderIntent | None, str]:
    "Stop required and within the cap; size rounded; `valid_order`'s caps."
    if not (math.isfinite(ctx.price) and ctx.price > 0):
        return None, f"no valid reference price ({ctx.price!r})"
    sl = effective_sl_pct(intent, ctx.price)
    if sl > self.risk.max_stop_loss_pct:
        return None, (f"stop-loss {sl:.4g} % exceeds SAFETY.MAX_STOP_LOSS_PCT {self.risk.max_stop_loss_pct:g} %; "
                      "every order needs a stop within the cap")
    notional = intent.notional if intent.notional is not None else intent.qty * ctx.price
    sized = round_size(notional, ctx.price, ctx.qty_step, ctx.min_notional)
    if sized.qty == 0:  # below one lot or the venue's minimum: refused, never rounded up
        return None, sized.reason
    asset_open = sum(abs(float(p["notional"])) for p in ctx.open_positions)
    ok, reason = valid_order(ctx.equity, sized.notional, sl, intent.asset, ctx.leverage, ctx.daily_realised_loss,
                             asset_open, self.risk)
    if not ok:
        return None, reason
    return dataclasses.replace(intent, qty=sized.qty, notional=None), ""


def _check_book(self: Router, intent: OrderIntent, ctx: BookContext, cid: str) -> tuple[str, str]:
    "Budget then exposure; ('', '') when both pass (the budget is reserved under `cid`)."
    notional = intent.qty * ctx.price
    if self.budget is not None:
        ok, reason = self.budget.can_afford(intent.asset, notional, ctx.leverage)
        if not ok:
            return "budget", reason
    ok, reason = can_open(intent.symbol, notional, ctx.open_positions, ctx.equity, cfg=self.exposure)
    if not ok:
        return "exposure", reason
    if self.budget is not None:
        self.budget.reserve(intent.asset, notional, cid, ctx.leverage)
    return "", ""


Router._check_risk, Router._check_book = _check_risk, _check_book


# %% [markdown]
# ### Placing
# `place` runs the checks of an opening order, or none for a reduce-only one, then `send`: record, then the
# client. A client that raises leaves the order `unknown` — to be resolved by `resolve` looking the id up,
# never by a second id.

# %%
#| export
def place(self: Router, intent: OrderIntent, *,
          decision_ts: datetime,  # close time of the bar the decision was made on
          ctx: BookContext,
          sequence: int = 0,  # n-th order of this decision
          reduce_only: bool = False,  # an exit: skips mode, risk, budget and exposure
          order_type: str = "market", limit_price: float | None = None, stop_price: float | None = None,
          ) -> RouteResult:
    "Check an intent and send it to its asset's client; the result says what happened and why."
    cid = client_order_id(intent.strategy_id, intent.symbol, decision_ts, sequence)
    if not reduce_only:
        ok, reason = self.controller.can_open(intent.asset)
        if not ok:
            return self._refuse("mode", reason, intent, cid)
        sized, reason = self._check_risk(intent, ctx)
        if sized is None:
            return self._refuse("risk", reason, intent, cid)
        intent = sized
        if self.store.get_order(cid) is None:  # a re-decided order already holds its reservation
            stage, reason = self._check_book(intent, ctx, cid)
            if stage:
                return self._refuse(stage, reason, intent, cid)
    elif intent.qty is None:
        return self._refuse("risk", "a reduce-only order needs a quantity", intent, cid)
    order = Order(cid, intent, order_type=order_type, limit_price=limit_price, stop_price=stop_price,
                  reduce_only=reduce_only, created_at=decision_ts)
    return self.send(order)


def send(self: Router, order: Order) -> RouteResult:
    "Record `order` (or find it recorded), then hand it to the client unless the venue already has it."
    cid, cap = order.client_order_id, self.risk.max_stop_loss_pct
    ref = order.limit_price or order.stop_price
    if not order.reduce_only:  # whatever path the order came by (a restore too)
        sl = effective_sl_pct(order.intent, ref) if ref is not None else (order.intent.sl_pct or math.nan)
        if sl > cap:
            if self.store.get_order(cid) is not None:
                self.store.update_order_status(cid, "rejected")
            return self._refuse("risk", f"stop-loss {sl:.4g} % exceeds SAFETY.MAX_STOP_LOSS_PCT {cap:g} %; the "
                                        "order is not sent", order.intent, cid)
    existed = self.store.get_order(cid) is not None
    stored = self.store.record_order(order)
    client = self._client(order.intent.asset)
    if existed:  # even a 'new' record may have reached the venue: a crash can fall between submit and the update
        venue = client.lookup(cid)
        if venue is not None:  # it reached the venue before a crash: never send it again
            self.store.update_order_status(cid, venue)
            return RouteResult(True, "venue", f"already at the venue ({venue})", self.store.get_order(cid))
    if self.audit is not None:
        self.audit.append("order_submitted", client_order_id=cid, asset=order.intent.asset,
                          symbol=order.intent.symbol, side=order.intent.side, qty=order.intent.qty,
                          reduce_only=order.reduce_only, strategy=order.intent.strategy_id)
    try:
        ack = client.submit(stored)
    except Exception as exc:  # the outcome is unknown: keep the id, resolve by lookup
        self.store.update_order_status(cid, "unknown")
        log_event("order_outcome_unknown", client_order_id=cid, error=f"{type(exc).__name__}: {exc}")
        return RouteResult(False, "client", f"{type(exc).__name__}: {exc}", self.store.get_order(cid))
    status = "submitted" if ack.status == "submitted" else ack.status
    order = self.store.update_order_status(cid, status, ack.broker_order_id)
    if ack.status == "rejected":
        self._release(order)
        return RouteResult(False, "client", ack.reason, order)
    return RouteResult(True, "", "", order)


def _release(self: Router, order: Order) -> None:
    "Free the budget an order reserved (it filled, was cancelled or rejected)."
    if self.budget is not None and order.intent.asset in self.budget.buckets:
        self.budget.release(order.intent.asset, order.client_order_id)


def cancel(self: Router, asset: str, cid: str, reason: str = "replaced") -> bool:
    "Cancel a working order at the client and in the store; False if nothing was working."
    done = self._client(asset).cancel(cid)
    if self.store.get_order(cid) is not None:
        order = self.store.update_order_status(cid, "cancelled" if done else self._client(asset).lookup(cid) or "cancelled")
        self._release(order)
    return done


def resolve(self: Router, asset: str) -> list[str]:
    "Settle orders of unknown outcome by asking the client about their ids; the ids it never saw are sent again."
    settled = []
    for order in self.store.open_orders():
        if order.intent.asset == asset and order.status == "unknown":
            venue = self._client(asset).lookup(order.client_order_id)
            if venue is None:
                self.send(order)
            else:
                self.store.update_order_status(order.client_order_id, venue)
            settled.append(order.client_order_id)
    return settled


Router.place, Router.send, Router._release, Router.cancel, Router.resolve = place, send, _release, cancel, resolve

# %% [markdown]
# ### Examples
# A minimal client records what reaches it, so we can see what the router lets through.

# %%
from tradingbot.brokers.base import Ack, Capabilities
from tradingbot.execution.budget import Bucket


class _Venue(ExecutionClient):
    capabilities = Capabilities("test", live=False, attached_protection=True)

    def __init__(self, fail=False):
        self.orders, self.fail = {}, fail

    def submit(self, order):
        if self.fail:
            raise ConnectionError("timed out")
        self.orders[order.client_order_id] = order
        return Ack(order.client_order_id, "submitted", broker_order_id="b-" + order.client_order_id[-4:])

    def cancel(self, cid):
        return self.orders.pop(cid, None) is not None

    def lookup(self, cid):
        return "submitted" if cid in self.orders else None

    def positions(self): return {}
    def protection(self, symbol): return None, None
    def set_protection(self, symbol, sl, tp): pass
    def poll(self): return []


tmp = Path(tempfile.mkdtemp())
venue, store = _Venue(), OrderStore(tmp / "orders.sqlite")
budget = Budget({"crypto_spot": Bucket(1000.0, 1000.0)})
router = Router(store, {"crypto_spot": venue}, budget=budget)
ctx = BookContext(equity=5000.0, price=50_000.0, qty_step=1e-6, min_notional=5.0)
when = datetime.fromisoformat("2024-03-01T10:00:00+00:00")
buy = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=None, strategy_id="rsi2", notional=500.0,
                  sl_distance=1000.0)
r = router.place(buy, decision_ts=when, ctx=ctx)
test_eq((r.ok, r.order.status, r.order.intent.qty), (True, "submitted", 0.01))
test_eq(store.get_order(r.order.client_order_id).broker_order_id, "b-" + r.order.client_order_id[-4:])
test_eq(budget.bucket("crypto_spot").available, 500.0)  # reserved until filled or cancelled

# %% [markdown]
# The same decision again (a restart re-deciding the bar) finds the id at the venue and sends nothing:

# %%
again = router.place(buy, decision_ts=when, ctx=ctx)
test_eq((again.ok, again.stage, len(venue.orders)), (True, "venue", 1))
test_eq(budget.bucket("crypto_spot").available, 500.0)  # not reserved twice

# %% [markdown]
# A crash between the client call and the status update leaves the record `new` while the venue has the
# order; the router still asks the venue first, and sends nothing:

# %%
_crashed = Order(client_order_id("rsi2", "BTCUSDT", when, 7), dataclasses.replace(buy, qty=0.001, notional=None))
store.record_order(_crashed)
venue.orders[_crashed.client_order_id] = _crashed  # it reached the venue before the crash
_n = len(venue.orders)
test_eq((router.send(_crashed).stage, len(venue.orders)), ("venue", _n))
test_eq(store.get_order(_crashed.client_order_id).status, "submitted")
del venue.orders[_crashed.client_order_id]

# %% [markdown]
# Every check fails fast with its reason:

# %%
wide = dataclasses.replace(buy, sl_distance=10_000.0)  # 20 % below the price
test_eq(router.place(wide, decision_ts=when, ctx=ctx, sequence=1).stage, "risk")
assert "exceeds SAFETY.MAX_STOP_LOSS_PCT" in router.place(wide, decision_ts=when, ctx=ctx, sequence=1).reason
_small = router.place(dataclasses.replace(buy, notional=20.0), decision_ts=when, sequence=2,
                      ctx=dataclasses.replace(ctx, min_notional=50.0))
test_eq(_small.stage, "risk")
assert "below the minimum 50 USD" in _small.reason
# the $10 rule on a venue whose lot is worth more is refused, not rounded up: $10 of EUR/USD at 1.08 is 9 units,
# $9.72, under the $10 minimum
_fx = BookContext(equity=900.0, price=1.08, qty_step=1.0, min_notional=10.0)
_eur = OrderIntent("forex", "EURUSD", "buy", sl_pct=1.0, strategy_id="rsi2", notional=10.0)
test_eq(_check_risk(router, _eur, _fx), (None, "min notional: 9.72 USD after rounding 9.2592593 down to step 1 is "
                                           "below the minimum 10 USD"))
big = router.place(dataclasses.replace(buy, notional=900.0), decision_ts=when, ctx=ctx, sequence=3)
test_eq(big.stage, "budget")  # 500 of the 1,000 are reserved
assert "available" in big.reason


class _Killed:
    def can_open(self, asset):
        return False, "global kill switch is on"


closing = Router(store, {"crypto_spot": venue}, controller=_Killed(), budget=budget)
test_eq(closing.place(buy, decision_ts=when, ctx=ctx, sequence=4).reason, "global kill switch is on")
sell = OrderIntent("crypto_spot", "BTCUSDT", "sell", sl_pct=2.0, strategy_id="rsi2", qty=0.01)
test_eq(closing.place(sell, decision_ts=when, ctx=ctx, sequence=5, reduce_only=True).ok, True)  # exits pass
test_eq(store.get_order(client_order_id("rsi2", "BTCUSDT", when, 4)), None)  # a refusal records nothing

# %% [markdown]
# A client that times out leaves the order `unknown`; `resolve` sends it again under the same id once the
# venue answers and does not know it:

# %%
flaky = _Venue(fail=True)
r2 = Router(store, {"crypto_spot": flaky}).place(sell, decision_ts=when, ctx=ctx, sequence=6, reduce_only=True)
test_eq((r2.ok, r2.stage, r2.order.status), (False, "client", "unknown"))
flaky.fail = False
test_eq(Router(store, {"crypto_spot": flaky}).resolve("crypto_spot"), [r2.order.client_order_id])
test_eq(list(flaky.orders), [r2.order.client_order_id])
test_eq(store.get_order(r2.order.client_order_id).status, "submitted")

# %% [markdown]
# An order restored from the store with a stop beyond the cap is refused at `send` too, and marked rejected:

# %%
_wide = Order(client_order_id("rsi2", "BTCUSDT", when, 9), dataclasses.replace(sell, sl_pct=20.0))
store.record_order(_wide)
_res = router.send(_wide)
test_eq((_res.ok, _res.stage, store.get_order(_wide.client_order_id).status), (False, "risk", "rejected"))
assert _wide.client_order_id not in venue.orders

# %%
test_eq(router.cancel("crypto_spot", r.order.client_order_id), True)
test_eq(store.get_order(r.order.client_order_id).status, "cancelled")
test_eq(budget.bucket("crypto_spot").available, 1000.0)
store.close()
