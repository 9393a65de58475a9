"""Technical indicators: `apply_indicators(df, spec)` over TA-Lib, plus numba kernels for what TA-Lib lacks.

Hand-written (not generated): it only re-exports the public API of the notebook-generated modules
`core` (spec, columns, apply, warm-up), `registry` (the registry and the TA-Lib-backed indicators),
`composite` (indicators built from TA-Lib pieces or on the kernels) and `_nb` (the kernels).
Importing the package fills the registry.
"""
from ._nb import fib_levels_nb, supertrend_nb, vwap_bands_nb
from .composite import FIB_RATIOS, SUPERTREND_SETTLE
from .core import (SOURCES, Entry, apply_indicators, default_spec, entry_columns, indicator_arrays, list_indicators,
                   parse_entry, parse_spec, spec_columns, warmup_bars)
from .registry import INDICATORS, WARMUP_TOL, Indicator, decay_bars, register

__all__ = [
    "apply_indicators", "indicator_arrays", "default_spec", "warmup_bars", "list_indicators", "spec_columns",
    "parse_spec", "parse_entry", "entry_columns", "Entry", "SOURCES",
    "INDICATORS", "Indicator", "register", "decay_bars", "WARMUP_TOL", "FIB_RATIOS", "SUPERTREND_SETTLE",
    "fib_levels_nb", "supertrend_nb", "vwap_bands_nb",
]
