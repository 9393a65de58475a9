"""tradingbot: a notebook-first research workspace for a multi-asset, self-learning trading bot.

Hand-written (not generated): only sets the package version and numba's cache location.
"""
import os
from pathlib import Path

__version__ = "0.1.0"

# numba caches compiled kernels beside the source by default; inside a read-only site-packages
# that import can hang or fail, so keep the cache in the repository (git-ignored).
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".numba_cache"))
