"""A strategy of the user's own package, named in strategies.json (`"kind": "python"`), reaches every path:
`make_strategy`, `validate_strategy` through `runners/report.py`, and the paper engine through `runners/live.py`.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

USER_MODULE = '''
from tradingbot.strategies.base import Signals, Strategy


class Breakout(Strategy):
    "Buy a close above the previous high of `period` bars; sell a down close."
    defaults = {"period": 20, "atr_mult": 2.0}
    search_space = {"period": [10, 20]}

    def indicator_spec(self):
        return [{"name": "donchian", "period": self.params["period"]}, {"name": "atr", "period": 14}]

    def decide(self, f):
        up = f[f"donchian_upper_{self.params['period']}"].shift(1)
        return Signals(f.close > up, f.close < f.close.shift(1), stop_distance=f.atr_14 * self.params["atr_mult"],
                       time_stop_bars=3)
'''


def _workspace(tmp: Path) -> tuple[Path, dict]:
    "A config dir trading the user's Breakout on BTC, and the environment that finds its package."
    (tmp / "userpkg").mkdir()
    (tmp / "userpkg" / "__init__.py").write_text("")
    (tmp / "userpkg" / "breakout.py").write_text(USER_MODULE)
    cfg = tmp / "config"
    shutil.copytree(ROOT / "config", cfg)
    strategies = json.loads((cfg / "strategies.json").read_text())
    strategies["strategies"]["breakout"] = {"kind": "python", "class_path": "userpkg.breakout:Breakout",
                                            "assets": ["crypto_spot"], "params": {"period": 24}}
    (cfg / "strategies.json").write_text(json.dumps(strategies))
    assets = json.loads((cfg / "assets.json").read_text())
    assets["forex"]["enabled"] = False
    assets["crypto_spot"]["strategies"] = ["breakout"]
    (cfg / "assets.json").write_text(json.dumps(assets))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")]),
           "TRADINGBOT_CONFIG_DIR": str(cfg), "TRADINGBOT_LOG_DIR": str(tmp / "logs"),
           "TRADINGBOT_REPORTS_DIR": str(tmp / "reports")}
    return cfg, env


def test_user_strategy_validates_and_paper_trades(tmp_path):
    cfg, env = _workspace(tmp_path)
    live = subprocess.run([sys.executable, str(ROOT / "runners" / "live.py"), "--config", str(cfg), "--state",
                           str(tmp_path / "state"), "--bars", "3000"], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert live.returncode == 0, live.stderr[-2000:]
    routed = [json.loads(line) for f in (tmp_path / "logs" / "decisions").glob("*.jsonl") for line in f.open()]
    assert any(r["event"] == "intent_routed" and r["strategy"] == "breakout" for r in routed)
    report = subprocess.run([sys.executable, str(ROOT / "runners" / "report.py"), "validation", "--strategy",
                             "breakout", "--data", "btcusd_1h", "--config", str(cfg), "--quiet"], env=env,
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert report.returncode == 0, report.stderr[-2000:]
    (record,) = (tmp_path / "logs" / "validation" / "breakout").glob("*.json")
    rec = json.loads(record.read_text())
    assert rec["strategy"] == "breakout" and rec["params"]["period"] == 24 and rec["asset"] == "crypto_spot"
    assert rec["n_trials"] == 3 and rec["metrics"]["trades"] > 50  # the configured 24 and the grid's 10 and 20


def test_a_bad_class_path_is_a_clear_error(tmp_path):
    cfg, env = _workspace(tmp_path)
    strategies = json.loads((cfg / "strategies.json").read_text())
    strategies["strategies"]["breakout"]["class_path"] = "userpkg.breakout:Nope"
    (cfg / "strategies.json").write_text(json.dumps(strategies))
    live = subprocess.run([sys.executable, str(ROOT / "runners" / "live.py"), "--config", str(cfg), "--state",
                           str(tmp_path / "state"), "--bars", "10"], env=env, capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert live.returncode == 2 and "Traceback" not in live.stderr, live.stderr[-2000:]
    assert "strategies.json: strategies.breakout.class_path: 'userpkg.breakout:Nope' cannot be imported" in live.stderr
