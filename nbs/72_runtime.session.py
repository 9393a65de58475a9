# %% [markdown]
# # Paper session
#
# > Each asset's paper bankroll: starts at $1,000, topped up by $1,000 when it falls to $10, each top-up opening a new epoch with reward points reset.

# %%
#| default_exp runtime.session

# %% [markdown]
# Training never stops because a strategy lost its paper money (seed 002, bankroll manager): when an
# asset's paper equity falls to `PAPER.PAPER_RESET_THRESHOLD` (default $10) it receives
# `PAPER.PAPER_TOPUP_AMOUNT` (default $1,000) and a new **epoch** begins. Epochs keep the record honest:
# equity curves and reward points are compared within an epoch, and the log says when and why each one
# started (`paper_epoch_started`). Reward points reset with the epoch so a learner cannot bank the
# points of a bankroll that went bust.
#
# The session only does bankroll arithmetic; the portfolio decides the P&L and the learner the reward
# points. The session's `to_dict()` is what `runtime.json` keeps under `sessions[asset]`.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from tradingbot.config import get_key
from tradingbot.jsonlog import log_event

# %%
#| hide
import tempfile

from fastcore.test import test_close, test_eq, test_fail

from tradingbot import jsonlog
from tradingbot.jsonlog import read_jsonl

_events = jsonlog.configure(tempfile.mkdtemp())  # the examples' events go to a scratch log we can read

# %% [markdown]
# ## The session; P&L and top-ups
# `apply_pnl` books a realised P&L (after fees). If equity ends at or below the threshold the session is
# topped up — by as many top-ups as it takes to clear the threshold, so one catastrophic loss cannot leave
# the bankroll below it — and a new epoch starts. It returns whether that happened.

# %%
#| export
_STORED = ("asset", "equity", "epoch", "reward_points", "topups", "topped_up_usd")


def _finite(name: str, value: float) -> float:
    "`value` as a float, or a ValueError naming it: NaN equity would hide every later loss."
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass
class PaperSession:
    "One asset's paper bankroll: equity, epoch, reward points and top-ups so far."
    asset: str
    equity: float
    epoch: int = 1
    reward_points: float = 0.0
    topups: int = 0  # how many top-ups since the session began
    topped_up_usd: float = 0.0  # money added by top-ups (not profit)
    reset_threshold: float = field(default=10.0, repr=False)
    topup_amount: float = field(default=1000.0, repr=False)

    @classmethod
    def start(cls, asset: str) -> PaperSession:
        "A fresh session at PAPER_EQUITY_START with the config's threshold and top-up."
        paper = get_key("PAPER")
        return cls(asset, float(paper["PAPER_EQUITY_START"]), reset_threshold=float(paper["PAPER_RESET_THRESHOLD"]),
                   topup_amount=float(paper["PAPER_TOPUP_AMOUNT"]))

    def apply_pnl(self,
                  pnl: float,  # realised P&L in USD, after fees
                  ) -> bool:  # True when the P&L triggered a top-up and a new epoch
        "Book `pnl`; top up and start a new epoch when equity falls to the threshold."
        self.equity += _finite("pnl", pnl)
        if self.equity > self.reset_threshold:
            return False
        self._top_up()
        return True

    def _top_up(self) -> None:
        "Top up until equity clears the threshold; open and log the next epoch."
        before = self.equity
        count = math.floor((self.reset_threshold - before) / self.topup_amount) + 1
        self.equity = before + count * self.topup_amount
        self.topups += count
        self.topped_up_usd += count * self.topup_amount
        self.epoch += 1
        self.reward_points = 0.0
        log_event("paper_epoch_started", asset=self.asset, epoch=self.epoch, equity_before=before,
                  equity_after=self.equity, topup=count * self.topup_amount)

    def add_reward(self, points: float) -> float:
        "Add reward points for this epoch; return the epoch's total."
        self.reward_points += _finite("points", points)
        return self.reward_points

    def to_dict(self) -> dict:
        "The session as plain JSON for runtime.json."
        return {k: v for k, v in asdict(self).items() if k in _STORED}

    @classmethod
    def from_dict(cls, d: dict) -> PaperSession:
        "A session restored from `to_dict()` output, with the config's threshold and top-up."
        if not isinstance(d, dict) or set(d) != set(_STORED):
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"paper session needs keys {sorted(_STORED)}, got {got}")
        if not isinstance(d["epoch"], int) or d["epoch"] < 1 or not isinstance(d["topups"], int) or d["topups"] < 0:
            raise ValueError(f"paper session epoch must be an int >= 1 and topups an int >= 0, "
                             f"got {d['epoch']!r}, {d['topups']!r}")
        s = cls.start(str(d["asset"]))
        s.equity, s.reward_points = _finite("equity", d["equity"]), _finite("reward_points", d["reward_points"])
        s.topped_up_usd, s.epoch, s.topups = _finite("topped_up_usd", d["topped_up_usd"]), d["epoch"], d["topups"]
        return s


# %%
s = PaperSession.start("forex")
test_eq((s.equity, s.epoch, s.reward_points, s.reset_threshold, s.topup_amount), (1000.0, 1, 0.0, 10.0, 1000.0))
test_fail(lambda: _finite("pnl", float("nan")), contains="pnl must be a finite number, got nan")

# %%
s = PaperSession.start("crypto_spot")
s.add_reward(3.5)
test_eq(s.apply_pnl(-500), False)
test_eq((s.equity, s.epoch, s.reward_points), (500.0, 1, 3.5))
test_eq(s.apply_pnl(-490), True)  # 10 left: at the threshold counts
test_eq((s.equity, s.epoch, s.reward_points, s.topups), (1010.0, 2, 0.0, 1))
ev = [r for r in read_jsonl(_events.path_for(jsonlog.utc_now())) if r["event"] == "paper_epoch_started"]
test_eq({k: ev[-1][k] for k in ("asset", "epoch", "equity_before", "equity_after")},
        {"asset": "crypto_spot", "epoch": 2, "equity_before": 10.0, "equity_after": 1010.0})

# %% [markdown]
# A loss far beyond the bankroll (a futures gap, say) is topped up past the threshold in one epoch:

# %%
test_eq(s.apply_pnl(-2500.0), True)
test_close(s.equity, 510.0)
test_eq((s.epoch, s.topups, s.topped_up_usd), (3, 3, 3000.0))
test_eq(s.apply_pnl(10.0), False)
test_fail(lambda: s.apply_pnl(float("inf")), contains="pnl must be a finite number")
test_fail(lambda: s.add_reward("1"), contains="points must be a finite number")
test_close(s.equity, 520.0)  # a refused P&L changes nothing

# %% [markdown]
# ## Persistence
# `to_dict` is plain JSON for `runtime.json`; `from_dict` refuses a record with missing or unknown keys
# or non-finite numbers, naming the problem. Threshold and top-up come from the config at load time, not
# from the file, so a config change applies to a restored session.

# %%
import json

s = PaperSession.start("options")
s.apply_pnl(-995.0); s.add_reward(2.0)
d = json.loads(json.dumps(s.to_dict()))
test_eq(d, {"asset": "options", "equity": 1005.0, "epoch": 2, "reward_points": 2.0, "topups": 1, "topped_up_usd": 1000.0})
test_eq(PaperSession.from_dict(d), s)
test_fail(lambda: PaperSession.from_dict({**d, "equity": None}), contains="equity must be a finite number")
test_fail(lambda: PaperSession.from_dict({**d, "extra": 1}), contains="paper session needs keys")
test_fail(lambda: PaperSession.from_dict({**d, "epoch": 0}), contains="epoch must be an int >= 1")
