# %% [markdown]
# # Per-asset budget
#
# > Each asset trades from its own bucket (`assets.<asset>.allocation_usd`): what it may spend, what open orders have reserved, and paper P&L compounding in the bucket; saved as JSON, atomically.

# %%
#| default_exp execution.budget

# %% [markdown]
# One asset's losses must not eat another's allowance (seed 002, budget_manager). A bucket starts at
# the asset's allocation; realised P&L is added to it, so paper profits compound and losses shrink it.
# An order reserves its notional under its `client_order_id` until it fills or is cancelled, and
# `release` frees exactly that reservation: two orders in flight never spend the same dollars, and a
# release of an unknown id changes nothing. Open positions count too: the router passes the notional the
# asset already holds, so a bucket of $300 cannot carry two positions of $250 each however their orders
# were spaced. The router asks `can_afford` after risk and before exposure.

# %%
#| export
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from tradingbot.config import ASSETS, get_key
from tradingbot.fileio import atomic_write_text

# %%
#| hide
import tempfile

from fastcore.test import test_close, test_eq, test_fail


# %%
#| export
@dataclass
class Bucket:
    "One asset's money: the allocation, its balance after realised P&L, and open reservations."
    allocation: float
    balance: float
    reserved: dict[str, float] = field(default_factory=dict)  # client_order_id -> notional

    @property
    def available(self) -> float:
        "What a new order may still use."
        return self.balance - sum(self.reserved.values())


# %%
b = Bucket(1000.0, 1000.0, {"o1": 300.0})
test_eq(b.available, 700.0)


# %%
#| export
def _amount(name: str, value: float, allow_negative: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or (value < 0 and not allow_negative):
        raise ValueError(f"{name} must be a finite{'' if allow_negative else ' non-negative'} number, got {value!r}")
    return value


class Budget:
    "Per-asset buckets: affordability (open positions and reservations), reservations, P&L compounding, JSON state."

    def __init__(self, buckets: dict[str, Bucket],  # asset -> its bucket
                 ):
        self.buckets = buckets

    @classmethod
    def from_config(cls) -> Budget:
        "A fresh bucket per enabled asset at its `allocation_usd`."
        alloc = {a: float(get_key(f"assets.{a}.allocation_usd")) for a in ASSETS if get_key(f"assets.{a}.enabled")}
        return cls({a: Bucket(v, v) for a, v in alloc.items()})

    def bucket(self, asset: str,  # an asset with a bucket
               ) -> Bucket:
        "The bucket of `asset`, or a ValueError listing the known ones."
        if asset not in self.buckets:
            raise ValueError(f"no budget for asset {asset!r}; known: {', '.join(self.buckets) or 'none'}")
        return self.buckets[asset]

    def can_afford(self, asset: str,  # the asset
                   notional: float,  # the new order's notional in USD
                   leverage: float = 1.0,  # its leverage: the margin is notional / leverage
                   open_notional: float = 0.0,  # what the asset's open positions hold (their margin counts too)
                   ) -> tuple[bool, str]:
        "Whether `asset`'s bucket covers the margin of `notional` besides its open positions and reservations."
        b, lev = self.bucket(asset), _amount("leverage", leverage)
        margin, held = _amount("notional", notional) / lev, _amount("open_notional", open_notional) / lev
        free = b.available - held
        if margin > free + 1e-9:
            return False, (f"budget {asset}: needs {margin:.2f} USD, {free:.2f} USD available "
                           f"(balance {b.balance:.2f}, reserved {sum(b.reserved.values()):.2f}, "
                           f"open positions {held:.2f})")
        return True, ""

    def reserve(self, asset: str,  # the asset
                notional: float,  # the order's notional in USD
                client_order_id: str,  # the order's id
                leverage: float = 1.0,  # its leverage
                open_notional: float = 0.0,  # what the asset's open positions hold
                ) -> float:  # the margin reserved
        "Set aside the margin of an order under its id; raise ValueError if the bucket cannot cover it."
        b = self.bucket(asset)
        if client_order_id in b.reserved:
            return b.reserved[client_order_id]
        ok, reason = self.can_afford(asset, notional, leverage, open_notional)
        if not ok:
            raise ValueError(reason)
        b.reserved[client_order_id] = notional / leverage
        return b.reserved[client_order_id]

    def release(self, asset: str,  # the asset
                client_order_id: str,  # the order whose reservation to free
                ) -> float:  # the amount freed (0 for an unknown id)
        "Free an order's reservation (filled or cancelled); return the amount freed."
        return self.bucket(asset).reserved.pop(client_order_id, 0.0)

    def apply_pnl(self, asset: str,  # the asset
                  pnl: float,  # realised P&L after fees (or a top-up)
                  ) -> float:  # the new balance
        "Add realised P&L (after fees) to the bucket, so results compound; return the new balance."
        b = self.bucket(asset)
        b.balance += _amount("pnl", pnl, allow_negative=True)
        return b.balance

    def to_dict(self) -> dict:
        "JSON-able state of every bucket."
        return {a: {"allocation": b.allocation, "balance": b.balance, "reserved": dict(b.reserved)}
                for a, b in self.buckets.items()}

    @classmethod
    def from_dict(cls, state: dict,  # `to_dict` output
                  ) -> Budget:
        "Rebuild a Budget from `to_dict` output; a ValueError names a malformed bucket."
        buckets = {}
        for asset, b in state.items():
            try:
                buckets[asset] = Bucket(_amount("allocation", b["allocation"]), _amount("balance", b["balance"], True),
                                        {str(k): _amount("reserved", v) for k, v in b.get("reserved", {}).items()})
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"budget state for {asset!r} is malformed: {exc}") from None
        return cls(buckets)

    def save(self, path: str | Path,  # the file to write
             ) -> Path:
        "Write the state to `path` atomically."
        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path,  # a file written by `save`
             ) -> Budget:
        "Read a state file written by `save`."
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: malformed budget state ({exc.msg}, line {exc.lineno})") from None


# %% [markdown]
# Affordability counts what is open: with $300 allocated, a $250 position leaves $50 for the next one.

# %%
bud = Budget({"crypto_spot": Bucket(1000.0, 1000.0), "forex": Bucket(500.0, 500.0)})
test_eq(bud.can_afford("crypto_spot", 900), (True, ""))
test_eq(bud.can_afford("forex", 600),
        (False, "budget forex: needs 600.00 USD, 500.00 USD available (balance 500.00, reserved 0.00, "
                "open positions 0.00)"))
test_eq(bud.can_afford("forex", 600, leverage=2), (True, ""))
test_fail(lambda: bud.can_afford("options", 10), contains="no budget for asset 'options'; known: crypto_spot, forex")
test_fail(lambda: bud.can_afford("forex", float("nan")), contains="notional must be a finite non-negative number")
test_eq(set(Budget.from_config().buckets) >= {"crypto_spot", "forex"}, True)
small = Budget({"crypto_spot": Bucket(300.0, 300.0)})
test_eq(small.can_afford("crypto_spot", 250.0, open_notional=263.0)[0], False)  # $263 already open
test_eq(small.can_afford("crypto_spot", 30.0, open_notional=263.0), (True, ""))

# %% [markdown]
# ## Reserving and releasing
# `reserve` refuses what the bucket cannot cover and is idempotent per order id (a retried call does not
# reserve twice); `release` returns the amount it freed (0 for an unknown id); `apply_pnl` compounds.

# %%
bud = Budget({"crypto_spot": Bucket(1000.0, 1000.0)})
test_eq(bud.reserve("crypto_spot", 600, "o1"), 600.0)
test_eq(bud.reserve("crypto_spot", 600, "o1"), 600.0)  # retried: still one reservation
test_eq(bud.bucket("crypto_spot").available, 400.0)
test_fail(lambda: bud.reserve("crypto_spot", 500, "o2"), contains="budget crypto_spot: needs 500.00 USD, 400.00 USD available")
test_eq((bud.release("crypto_spot", "o1"), bud.release("crypto_spot", "o1")), (600.0, 0.0))
test_eq(bud.apply_pnl("crypto_spot", 100.0), 1100.0)
test_eq(bud.apply_pnl("crypto_spot", -50.0), 1050.0)  # compounding: the next trade sizes off 1050
test_eq(bud.can_afford("crypto_spot", 1060)[0], False)

# %% [markdown]
# ## State
# `to_dict` / `from_dict` round-trip the buckets as plain JSON; `save` writes them atomically (a reader
# sees the old file or the new one) and `load` reports a damaged file by name.

# %%
bud = Budget({"crypto_spot": Bucket(1000.0, 1000.0)})
bud.reserve("crypto_spot", 250, "o7")
bud.apply_pnl("crypto_spot", 12.5)
test_eq(Budget.from_dict(json.loads(json.dumps(bud.to_dict()))).to_dict(), bud.to_dict())
test_fail(lambda: Budget.from_dict({"forex": {"balance": 1}}), contains="budget state for 'forex' is malformed")
with tempfile.TemporaryDirectory() as d:
    p = bud.save(Path(d) / "budget.json")
    test_eq(Budget.load(p).bucket("crypto_spot").available, 762.5)
    test_eq(sorted(x.name for x in Path(d).iterdir()), ["budget.json"])  # no temp file left
    p.write_text("{not json")
    test_fail(lambda: Budget.load(p), contains="malformed budget state")
