"""Shared by the parity tests: how a paper run's fills are read as round trips."""
import pandas as pd


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    "Entry and exit fill times of each round trip of a long-only book of one symbol."
    pos, rows, entry = 0.0, [], None
    for f in fills.itertuples():
        if pos == 0.0:
            entry = f.ts
        pos = round(pos + (f.qty if f.side == "buy" else -f.qty), 12)
        if pos == 0.0:
            rows.append((entry, f.ts))
    return pd.DataFrame(rows, columns=["entry_ts", "exit_ts"])
