# %% [markdown]
# # Paths
#
# > Where the workspace keeps config, data, logs, state and reports — one place, each overridable from the environment.

# %%
#| default_exp paths

# %% [markdown]
# Modules never build paths from `__file__` themselves: they ask here. Each location has an
# environment override so a runner, a test or a papermill report can point the whole workspace at a
# temporary directory without touching the repository.

# %%
#| export
from __future__ import annotations

import os
from pathlib import Path

# %%
#| hide
from fastcore.test import test_eq


# %%
#| export
def repo_root() -> Path:
    "The workspace root: $TRADINGBOT_ROOT, else the directory that holds the `tradingbot` package."
    if env := os.environ.get("TRADINGBOT_ROOT"):
        return Path(env).resolve()
    import tradingbot  # the package's own location works from a notebook and from the module alike
    return Path(tradingbot.__file__).resolve().parent.parent


_LOCATIONS = {  # name -> (environment variable, default relative to the root)
    "config": ("TRADINGBOT_CONFIG_DIR", "config"),
    "samples": ("TRADINGBOT_SAMPLES_DIR", "data/samples"),
    "cache": ("TRADINGBOT_CACHE_DIR", "data/cache"),
    "logs": ("TRADINGBOT_LOG_DIR", "logs"),
    "state": ("TRADINGBOT_STATE_DIR", "state"),
    "reports": ("TRADINGBOT_REPORTS_DIR", "reports"),
}


def workspace_path(name: str,  # 'config', 'samples', 'cache', 'logs', 'state' or 'reports'
                   ) -> Path:
    "Directory for `name` (config, samples, cache, logs, state, reports), honouring its environment override."
    if name not in _LOCATIONS:
        raise ValueError(f"unknown workspace location {name!r}; expected one of {sorted(_LOCATIONS)}")
    var, default = _LOCATIONS[name]
    return Path(os.environ.get(var) or repo_root() / default)


# %% [markdown]
# From a notebook or from the installed (editable) package, the root is the repository:

# %%
root = repo_root()
assert (root / "pyproject.toml").exists()
test_eq(workspace_path("samples"), root / "data" / "samples")
os.environ["TRADINGBOT_LOG_DIR"] = "/tmp/tb-logs"
test_eq(workspace_path("logs"), Path("/tmp/tb-logs"))
del os.environ["TRADINGBOT_LOG_DIR"]
