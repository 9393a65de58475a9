"""Paper (and, once validated and confirmed, live) trading runner.

    python runners/live.py [--config DIR] [--feed replay|live] [--speed X] [--bars N] [--duration S] [--state DIR]

With no arguments: every enabled asset with a bundled replay sample (BTC-USD hourly for crypto_spot,
EUR/USD hourly for forex) is paper-traded by its configured strategies, as fast as the machine goes,
and a summary is printed. Every asset boots in paper. SIGINT/SIGTERM stop taking decisions, save state
and exit 0; running again with the same --state resumes from the bar after the last one processed.
A bad configuration exits 2 with one line naming the file, the key and the rule.
"""
import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from tradingbot.config import ConfigError, asset_modes, config_hash, get_key, load_config
from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.samples import load_sample
from tradingbot.execution.store import StoreError
from tradingbot.paths import workspace_path
from tradingbot.runtime.audit import AuditError, AuditLog
from tradingbot.runtime.engine import Engine, asset_setup
from tradingbot.runtime.state import StateError

LIVE_KEYS = {"bybit": ("BYBIT_API_KEY", "BYBIT_API_SECRET"), "ibkr": ("IB_HOST", "IB_PORT")}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", metavar="DIR", help="directory of config.json, assets.json, strategies.json")
    p.add_argument("--feed", choices=("replay", "live"), default="replay", help="bundled replay (default) or venue")
    p.add_argument("--speed", type=float, default=None, help="replay at X times real time (default: flat out)")
    p.add_argument("--bars", type=int, default=None, help="end after bar N of the whole replay (counts across restarts)")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.add_argument("--state", metavar="DIR", default=None, help="state directory (default: state/)")
    args = p.parse_args(argv)
    for name in ("speed", "bars", "duration"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            p.error(f"--{name} must be > 0, got {value}")
    return args


def replay_assets() -> dict[str, str]:
    "Enabled assets with strategies and a bundled sample: asset -> sample name."
    assets = get_key("assets")
    return {a: c["replay_sample"] for a, c in assets.items()
            if c["enabled"] and c["strategies"] and c.get("replay_sample")}


def live_feed_problem() -> str:
    "Why a live feed cannot start (always something, until the venue data clients land)."
    venues = {get_key(f"assets.{a}.venue") for a, c in get_key("assets").items() if c["enabled"]}
    missing = [k for v in sorted(venues) for k in LIVE_KEYS.get(v, ()) if not os.environ.get(k)]
    if missing:
        return f"--feed live needs venue credentials in the environment: {', '.join(missing)} not set"
    return "--feed live: the Bybit and IBKR data clients are not part of this version; use --feed replay"


def build_feed(samples: dict[str, str], symbols: dict[str, str], args, start_seq: int) -> ReplayFeed:
    "One replay over every asset's sample, resumed at `start_seq`."
    timeframes = {get_key(f"assets.{a}.timeframe") for a in samples}
    if len(timeframes) != 1:
        raise ConfigError("assets.json", "timeframe", f"a replay needs one timeframe, got {sorted(timeframes)}")
    frames = {symbols[a]: load_sample(name) for a, name in samples.items()}
    for (asset, name), (symbol, bars) in zip(samples.items(), frames.items()):
        print(f"replay: {asset} {symbol} from {name} {len(bars)} bars {bars.index[0]:%Y-%m-%d} .. {bars.index[-1]:%Y-%m-%d}")
    return ReplayFeed(frames, timeframes.pop(), speed=args.speed, start_seq=start_seq, max_bars=args.bars)


def print_summary(summary: dict) -> None:
    print(f"bars processed up to seq {summary['cursor']}")
    print(f"{'asset':<12} {'trades':>6} {'wins':>5} {'fees':>9} {'P&L real':>10} {'P&L unreal':>10} "
          f"{'equity':>10} {'points':>8} {'epoch':>5}  open")
    for asset, s in summary["assets"].items():
        print(f"{asset:<12} {s['trades']:>6} {s['wins']:>5} {s['fees']:>9.2f} {s['pnl_r']:>10.2f} "
              f"{s['pnl_u']:>10.2f} {s['equity']:>10.2f} {s['points']:>8.2f} {s['epoch']:>5}  "
              f"{', '.join(s['open']) or '-'}")
        if s["live"] is not None:  # the live book beside the paper one
            v = s["live"]
            print(f"{asset + ' live':<12} {v['trades']:>6} {v['wins']:>5} {v['fees']:>9.2f} {v['pnl_r']:>10.2f} "
                  f"{v['pnl_u']:>10.2f} {v['equity']:>10.2f} {'':>8} {'':>5}  {', '.join(v['open']) or '-'}")


async def trade(engine: Engine, feed: ReplayFeed, duration: float | None) -> dict:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, engine.request_stop)
    if duration:
        loop.call_later(duration, engine.request_stop)
    return await engine.run(feed)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(config_dir=args.config)
        if args.feed == "live":
            print(f"error: {live_feed_problem()}", file=sys.stderr)
            return 2
        samples = replay_assets()
        if not samples:
            raise ConfigError("assets.json", "replay_sample", "no enabled asset has strategies and a replay sample")
        setups = [asset_setup(a) for a in samples]
        engine = Engine(setups, Path(args.state) if args.state else workspace_path("state"), workspace_path("logs"),
                        audit=AuditLog())  # <logs>/audit/audit.jsonl: every submission, refusal and switch, chained
        feed = build_feed(samples, {s.asset: s.symbols[0] for s in setups}, args, engine.cursor + 1)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except (StateError, StoreError, AuditError) as exc:  # a damaged state dir: say which file, touch nothing more
        print(f"state error: {exc}", file=sys.stderr)
        return 2
    print(f"config hash: {config_hash(cfg)}")
    print("modes: " + ", ".join(f"{asset}={mode}" for asset, mode in asset_modes(cfg).items()))
    if engine.cursor >= 0:
        print(f"resuming after bar {engine.cursor}")
    first = engine.cursor + 1  # the strategies' windows are refilled with the bars before the resume point
    engine.warm_up([feed.bar_at(s) for s in range(max(0, first - engine.window * len(setups)), first)])
    engine.start()
    print_summary(asyncio.run(trade(engine, feed, args.duration)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
