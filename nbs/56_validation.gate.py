# %% [markdown]
# # Promotion gate
#
# > The rules a strategy must pass before any asset may trade it live, and a verdict that names every rule it failed.

# %%
#| default_exp validation.gate

# %% [markdown]
# Seeds 002–004 set the bar: at least 500 trades, Sharpe ≥ 2.0, max drawdown ≤ 15 %, profit factor
# ≥ 1.5 and a bounded CVaR. Luck from a wide search is discounted by one more rule: the deflated Sharpe
# ratio — the probability that the Sharpe ratio beats the best one the search's trials would show by
# chance — must reach `min_deflated_sharpe`. The thresholds live in `config.json` (`VALIDATION.gates`),
# a strategy may tighten or relax them in `strategies.json`, and the verdict keeps one line per rule.
#
# A metric that was not measured (NaN: no trades, too few returns) fails its rule: the gate never passes
# on missing evidence.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from tradingbot.config import get_key

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %%
#| export
@dataclass(frozen=True)
class RuleResult:
    "One gate rule applied to one measured value."
    rule: str
    value: float
    op: str  # ">=" or "<="
    threshold: float
    passed: bool

    @property
    def reason(self) -> str:
        "Why the rule failed ('' when it passed)."
        if self.passed:
            return ""
        shown = "not measured" if not math.isfinite(self.value) else f"{self.value:.4g}"
        return f"{self.rule}: {shown}, needs {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Verdict:
    "The gate's decision with every rule's outcome."
    passed: bool
    rules: tuple[RuleResult, ...]

    @property
    def reasons(self) -> list[str]:
        "One line per failed rule."
        return [r.reason for r in self.rules if not r.passed]

    def to_dict(self) -> dict:
        "JSON-able form (NaN values become None)."
        rules = [{**asdict(r), "value": r.value if math.isfinite(r.value) else None} for r in self.rules]
        return {"passed": self.passed, "reasons": self.reasons, "rules": rules}


# %% [markdown]
# Drawdown and CVaR come from `metrics.summary` as negative fractions (quantstats' sign); the gates are
# written as positive percentages, so they are compared as losses in percent. Profit factor is taken over
# trades when trades were recorded (the per-bar one otherwise).

# %%
#| export
def _rule(rule: str, value, op: str, threshold: float) -> RuleResult:
    value = float("nan") if value is None else float(value)
    ok = math.isfinite(value) and (value >= threshold if op == ">=" else value <= threshold)
    return RuleResult(rule, value, op, float(threshold), bool(ok))


def default_gates() -> dict:
    "The gates of the current configuration (`VALIDATION.gates`)."
    return get_key("VALIDATION.gates")


def evaluate_gates(metrics: dict,  # from `metrics.summary` (trades, sharpe, max_drawdown, cvar, profit factors)
                   gates: dict | None = None,  # thresholds; missing keys come from the configuration
                   deflated_sharpe: float | None = None,  # from `overfit.deflated_sharpe_ratio`
                   ) -> Verdict:
    "Apply every gate rule and return the verdict."
    g = {**default_gates(), **(gates or {})}
    pf = metrics.get("trade_profit_factor")
    pf = metrics.get("profit_factor") if pf is None or not math.isfinite(pf) else pf
    loss = lambda x: float("nan") if x is None else -100.0 * float(x)  # noqa: E731 - negative fraction -> loss %
    rules = (
        _rule("trades", metrics.get("trades"), ">=", g["min_trades"]),
        _rule("sharpe", metrics.get("sharpe"), ">=", g["min_sharpe"]),
        _rule("max_drawdown_pct", loss(metrics.get("max_drawdown")), "<=", g["max_drawdown_pct"]),
        _rule("profit_factor", pf, ">=", g["min_profit_factor"]),
        _rule("cvar_pct", loss(metrics.get("cvar")), "<=", g["max_cvar_pct"]),
        _rule("deflated_sharpe", deflated_sharpe, ">=", g["min_deflated_sharpe"]),
    )
    return Verdict(all(r.passed for r in rules), rules)


# %%
good = {"trades": 812, "sharpe": 2.4, "max_drawdown": -0.11, "cvar": -0.021, "trade_profit_factor": 1.8}
v = evaluate_gates(good, deflated_sharpe=0.97)
test_eq((v.passed, v.reasons), (True, []))

bad = {**good, "trades": 120, "max_drawdown": -0.22, "trade_profit_factor": float("nan"), "profit_factor": 1.2}
v = evaluate_gates(bad, deflated_sharpe=None)
test_eq(v.passed, False)
test_eq(v.reasons, ["trades: 120, needs >= 500", "max_drawdown_pct: 22, needs <= 15",
                    "profit_factor: 1.2, needs >= 1.5", "deflated_sharpe: not measured, needs >= 0.95"])
test_eq(evaluate_gates(good, {"min_trades": 1000}, 0.97).reasons, ["trades: 812, needs >= 1000"])
test_eq(v.to_dict()["rules"][-1]["value"], None)


# %% [markdown]
# ## Eligible for live
# The runtime asks `eligible_for_live(strategy)` before an asset may switch to live. It reads the newest
# validation record (written by the report, see `validation.report`) and re-applies the gates of the
# *current* configuration to its stored metrics — tightening a gate in `config.json` revokes eligibility
# without waiting for the next scheduled report. No record, no live.

# %%
#| export
def eligible_for_live(strategy_id: str,  # a strategy id of strategies.json
                      gates: dict | None = None,  # override thresholds (default: configuration)
                      logs_root=None,  # where validation records live (default logs/)
                      ) -> bool:
    "True only if the strategy's latest validation record passes the gates now."
    from tradingbot.validation.report import latest_report
    record = latest_report(strategy_id, logs_root=logs_root)
    if not record or "metrics" not in record:
        return False
    verdict = evaluate_gates(record["metrics"], {**record.get("gates", {}), **(gates or {})},
                             record.get("deflated_sharpe"))
    return verdict.passed and bool(record.get("verdict", {}).get("passed"))


# %%
import tempfile
from pathlib import Path

from tradingbot.validation.report import save_result

with tempfile.TemporaryDirectory() as d:
    test_eq(eligible_for_live("rsi2", logs_root=d), False)
    record = {"metrics": good, "deflated_sharpe": 0.97, "gates": {}, "verdict": {"passed": True}}
    save_result(record, Path(d) / "validation/rsi2/20240101T000000Z.json")
    test_eq(eligible_for_live("rsi2", logs_root=d), True)
    test_eq(eligible_for_live("rsi2", {"min_sharpe": 3.0}, logs_root=d), False)  # stricter gate now
    save_result({**record, "metrics": bad}, Path(d) / "validation/rsi2/20240102T000000Z.json")
    test_eq(eligible_for_live("rsi2", logs_root=d), False)  # the newest record decides
