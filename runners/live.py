"""Paper/live runner. For now: load and validate the configuration, pin it, summarise the bundled data.

    python runners/live.py [--config DIR]

Every asset boots in paper whatever the files say (training first). A bad configuration exits 2
with one line naming the file, the key and the rule. The execution issue replaces the body with the
paper-trading engine; the flags and the boot sequence stay.
"""
import argparse
import sys

from tradingbot.config import ConfigError, asset_modes, config_hash, load_config
from tradingbot.data.samples import list_samples, load_sample


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", metavar="DIR", default=None,
                        help="directory holding config.json, assets.json, strategies.json (default: config/)")
    return parser.parse_args(argv)


def samples_summary() -> str:
    "One line per bundled sample, each loaded and validated."
    lines = [f"{'sample':<10} {'symbol':<7} {'tf':<3} {'rows':>6}  span (UTC)"]
    for name, info in list_samples().iterrows():
        bars = load_sample(name)
        lines.append(f"{name:<10} {info.symbol:<7} {info.timeframe:<3} {len(bars):>6}  "
                     f"{bars.index[0]:%Y-%m-%d %H:%M} .. {bars.index[-1]:%Y-%m-%d %H:%M}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(config_dir=args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    print(f"config hash: {config_hash(cfg)}")
    print("modes: " + ", ".join(f"{asset}={mode}" for asset, mode in asset_modes(cfg).items()))
    print(samples_summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
