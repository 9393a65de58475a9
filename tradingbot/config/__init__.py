"""Configuration: typed, validated JSON config files, environment overrides, secrets from the environment only,
a training-first boot guard, a config hash, and checked access by dotted path.

Hand-written (not generated): it only re-exports the public API of the notebook-generated modules
`models` (00_config.models: the pydantic models, `ASSETS`, the JSON Schemas), `loading` (04_config.loading:
reading a config directory, `ConfigError`, overrides, secrets, the boot guard, the hash) and `access`
(05_config.access: `load_config`, `get_key`, `set_key`, `save_config`).
"""
from . import access, loading, models
from .access import *  # noqa: F403
from .loading import *  # noqa: F403
from .models import *  # noqa: F403

__all__ = [*models.__all__, *loading.__all__, *access.__all__]
