"""Render reports with papermill.

    python runners/report.py validation --strategy rsi2 --data btcusd_1h [--param k=v ...] [--seed N]
    python runners/report.py validation --all [--data btcusd_1h]
    python runners/report.py validation --strategy rsi2 --data spx_1d --sizing cash   (research: no asset)

Writes reports/validation/<strategy>/<UTC timestamp>/report.ipynb + report.html and
logs/validation/<strategy>/<timestamp>.json (read back by tradingbot.validation.report.latest_report).
Exits 0 when every report rendered, 1 when a report failed to execute, 2 on bad arguments or config.
"""
import argparse
import sys

from tradingbot.config import ConfigError, load_config
from tradingbot.validation.report import report_parameters, run_report


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["validation"], help="which report")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--strategy", help="strategy id from config/strategies.json")
    which.add_argument("--all", action="store_true", help="every strategy in config/strategies.json")
    parser.add_argument("--data", default="btcusd_1h", help="bundled sample name, or venue:symbol:timeframe (cache)")
    parser.add_argument("--asset", default=None, help="validate under this asset's rules (default: the data's asset)")
    parser.add_argument("--sizing", default=None, choices=["risk", "cash"],
                        help="'cash': a research validation of data no asset trades (all-in sizing)")
    parser.add_argument("--param", action="append", default=[], metavar="K=V", help="override a strategy parameter")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default VALIDATION.seed)")
    parser.add_argument("--config", metavar="DIR", default=None, help="config directory (default config/)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        strategies = (list(load_config("strategies", config_dir=args.config)["strategies"]) if args.all
                      else [args.strategy])
        runs = [report_parameters(s, args.data, args.param, args.seed, args.config, args.asset, args.sizing)
                for s in strategies]
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for params in runs:
        try:
            run = run_report(args.kind, params, progress=not args.quiet)
        except Exception as exc:  # papermill raises PapermillExecutionError with the failing cell
            print(f"{params['strategy']}: report failed: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
            failed += 1
            continue
        print(f"{params['strategy']}: {run.html}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
