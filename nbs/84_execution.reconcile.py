# %% [markdown]
# # Reconciliation
#
# > Compare the local book with the venue's positions; a mismatch flags the asset `broker_desync` in `runtime.json` until someone clears it.

# %%
#| default_exp execution.reconcile

# %% [markdown]
# **The venue is P&L truth** (seed 002: only the reconciler is P&L truth). The local `Portfolio` is a
# model of the account; when it and the venue disagree on what is held, the venue is right and every
# local number derived from the position — exposure, unrealised P&L, the next order's size — is suspect.
# So a mismatch sets `state.assets[asset].broker_desync = True` and logs `broker_desync` with the
# quantities on both sides. The router halts *new entries* for a flagged asset (exits and protective
# orders still go through, so a desync never strands a position without its stop). The flag is sticky:
# a later matching check does not clear it, because a desync that "healed itself" still means fills
# were missed; an operator (or the engine after rebuilding the book from the venue) calls `clear`.
# `on_change(state)` runs after a flag flips, so the caller saves `runtime.json` and the halt survives
# a restart.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable

from tradingbot.brokers.base import ExecutionClient
from tradingbot.jsonlog import log_event
from tradingbot.runtime.state import RuntimeState

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail

from tradingbot.brokers.base import Capabilities
from tradingbot.execution.model import utc_now
from tradingbot.jsonlog import configure, read_jsonl

log = configure(tempfile.mkdtemp())  # keep this notebook's events out of the repository's logs/


# %% [markdown]
# ## Comparing positions
# Symbols missing on one side count as flat there. Quantities are compared relatively (`rel_tol`), so
# a venue that reports 0.30000000000000004 as 0.3 is not a desync; zero only equals zero.

# %%
#| export
@dataclass(frozen=True)
class Mismatch:
    "A symbol whose local and venue quantities differ."
    symbol: str
    local_qty: float
    venue_qty: float


def _qty(side: str, symbol: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{side} quantity of {symbol!r} must be a finite number, got {value!r}")
    return float(value)


def compare_positions(local: dict[str, float],  # symbol -> signed quantity in our book
                      venue: dict[str, float],  # symbol -> signed quantity at the venue
                      rel_tol: float = 1e-9,
                      ) -> list[Mismatch]:
    "The symbols whose quantities differ, sorted by symbol."
    if not (isinstance(rel_tol, (int, float)) and math.isfinite(rel_tol) and rel_tol >= 0):
        raise ValueError(f"rel_tol must be a finite number >= 0, got {rel_tol!r}")
    out = []
    for sym in sorted(set(local) | set(venue)):
        mine, theirs = _qty("local", sym, local.get(sym, 0.0)), _qty("venue", sym, venue.get(sym, 0.0))
        if not math.isclose(mine, theirs, rel_tol=rel_tol, abs_tol=0.0):
            out.append(Mismatch(sym, mine, theirs))
    return out


# %%
test_eq(compare_positions({"BTC": 0.3, "ETH": 0.0}, {"BTC": 0.1 + 0.2}), [])
test_eq(compare_positions({"BTC": 0.3}, {"BTC": 0.31, "ETH": -1.0, "SOL": 0.0}),
        [Mismatch("BTC", 0.3, 0.31), Mismatch("ETH", 0.0, -1.0)])
test_eq(compare_positions({"BTC": 1.0}, {"BTC": -1.0}), [Mismatch("BTC", 1.0, -1.0)])  # the side matters
test_eq(compare_positions({"BTC": 1.0}, {"BTC": 1.001}, rel_tol=0.01), [])
test_fail(lambda: compare_positions({"BTC": float("nan")}, {}), contains="local quantity of 'BTC' must be a finite")
test_fail(lambda: compare_positions({}, {}, rel_tol=-1), contains="rel_tol must be a finite number >= 0")


# %% [markdown]
# ## The reconciler

# %%
#| export
class Reconciler:
    "Compares each asset's book with its venue and keeps the `broker_desync` flags of the runtime state."

    def __init__(self, state: RuntimeState, on_change: Callable[[RuntimeState], None] | None = None):
        self.state, self.on_change = state, on_change

    def _asset(self, asset: str):
        if asset not in self.state.assets:
            raise ValueError(f"asset {asset!r} is not in the runtime state; known: {', '.join(self.state.assets)}")
        return self.state.assets[asset]

    def _flip(self, asset: str, value: bool) -> None:
        "Set the flag and tell the caller (who saves runtime.json), only when it changes."
        st = self._asset(asset)
        if st.broker_desync != value:
            st.broker_desync = value
            if self.on_change is not None:
                self.on_change(self.state)

    def check(self, asset: str, local: dict[str, float], client: ExecutionClient) -> list[Mismatch]:
        "Compare `local` with the venue's positions; flag and log the asset on a mismatch."
        self._asset(asset)
        mismatches = compare_positions(local, client.positions())
        if mismatches:
            log_event("broker_desync", asset=asset, venue=client.capabilities.venue,
                      mismatches=[asdict(m) for m in mismatches])
            self._flip(asset, True)
        return mismatches

    def clear(self, asset: str) -> None:
        "Lift the desync flag of `asset` (after the book was rebuilt from the venue)."
        if self._asset(asset).broker_desync:
            log_event("broker_desync_cleared", asset=asset)
        self._flip(asset, False)


# %%
class Venue(ExecutionClient):
    "Just positions."
    capabilities = Capabilities("paper", live=False, attached_protection=True)
    asset = "crypto_spot"

    def __init__(self, pos): self.pos = pos
    def submit(self, order): raise NotImplementedError
    def cancel(self, client_order_id): return False
    def lookup(self, client_order_id): return None
    def poll(self): return []
    def positions(self): return dict(self.pos)
    def protection(self, symbol): return (None, None)
    def set_protection(self, symbol, sl, tp): pass


saved = []
state = RuntimeState.default()
rec = Reconciler(state, on_change=lambda s: saved.append(s.assets["crypto_spot"].broker_desync))
test_eq(rec.check("crypto_spot", {"BTCUSDT": 0.5}, Venue({"BTCUSDT": 0.5})), [])
test_eq((state.assets["crypto_spot"].broker_desync, saved), (False, []))
got = rec.check("crypto_spot", {"BTCUSDT": 0.5}, Venue({"BTCUSDT": 0.25}))
test_eq(got, [Mismatch("BTCUSDT", 0.5, 0.25)])
test_eq((state.assets["crypto_spot"].broker_desync, saved), (True, [True]))
last = read_jsonl(log.path_for(utc_now()))[-1]
test_eq((last["event"], last["asset"], last["mismatches"]),
        ("broker_desync", "crypto_spot", [{"symbol": "BTCUSDT", "local_qty": 0.5, "venue_qty": 0.25}]))
rec.check("crypto_spot", {"BTCUSDT": 0.5}, Venue({"BTCUSDT": 0.5}))
test_eq((state.assets["crypto_spot"].broker_desync, saved), (True, [True]))  # sticky; no second save
test_eq(state.assets["forex"].broker_desync, False)  # other assets untouched
rec.clear("crypto_spot")
test_eq((state.assets["crypto_spot"].broker_desync, saved), (False, [True, False]))
test_eq(read_jsonl(log.path_for(utc_now()))[-1]["event"], "broker_desync_cleared")
rec.clear("crypto_spot")
test_eq(saved, [True, False])  # nothing flipped, nothing saved
test_fail(lambda: rec.check("stocks", {}, Venue({})), contains="asset 'stocks' is not in the runtime state")
