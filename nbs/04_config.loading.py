# %% [markdown]
# # Loading the configuration
#
# > Read a config directory: each file checked by its model with one-line errors, environment overrides, secrets from the environment only, the training-first boot guard and the config hash.

# %%
#| default_exp config.loading

# %% [markdown]
# Each of the three files is checked against its model (`config.models`): unknown keys, wrong types and
# out-of-range values are refused with **one line** naming the file, the key and the rule. Values can be
# overridden from the environment as `TRADINGBOT__SECTION__KEY=value`. Credentials are never in these
# files: they come from the environment (`BYBIT_API_KEY`, `TELEGRAM_BOT_TOKEN`, …) and never enter the
# effective config, its hash, a log or a report.

# %%
#| export
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr, ValidationError

from tradingbot.config.models import ASSETS, MODELS
from tradingbot.paths import workspace_path

# %%
#| hide
import shutil
import tempfile

from fastcore.test import test_eq, test_fail

from tradingbot.config.models import json_schemas


# %% [markdown]
# ## Errors a user can read
# A `ConfigError` is what every bad file, key or value raises. Its text is a single line,
# `file: key: rule`, which is what `runners/live.py` prints before exiting non-zero.

# %%
#| export
class ConfigError(ValueError):
    "A configuration problem, described in one line: `file: key: rule`."

    def __init__(self, file: str,  # the file (or 'environment') the problem is in
                 key: str,  # the dotted key, '' when the whole file is meant
                 rule: str,  # what is wrong and, where it helps, what to do
                 ):
        self.file, self.key, self.rule = file, key, rule
        super().__init__(f"{file}: {key}: {rule}" if key else f"{file}: {rule}")


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _rule(err: dict) -> str:
    "A pydantic error as a short rule, with the offending value."
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    got = err.get("input")
    shown = json.dumps(got) if isinstance(got, (int, float, str, bool)) or got is None else type(got).__name__
    return f"{err['msg'][0].lower()}{err['msg'][1:]} (got {shown})"


def config_error(file: str,  # the file that was validated
                 exc: ValidationError,  # pydantic's error
                 ) -> ConfigError:
    "The first pydantic error as a ConfigError, with a count of the others."
    errs = exc.errors()
    more = f" (and {len(errs) - 1} more)" if len(errs) > 1 else ""
    return ConfigError(file, _loc(errs[0]["loc"]), _rule(errs[0]) + more)


# %% [markdown]
# ## Secrets come from the environment, never from files
# A file that carries a credential is refused outright (the operator learns where it belongs), and
# `Secrets` masks its values in any `repr`.

# %%
#| export
SECRET_KEYS = {"BOT_TOKEN": "TELEGRAM_BOT_TOKEN", "CHAT_ID": "TELEGRAM_CHAT_IDS", "CHAT_IDS": "TELEGRAM_CHAT_IDS",
               "API_KEY": "BYBIT_API_KEY", "API_SECRET": "BYBIT_API_SECRET", "TOKEN": "TELEGRAM_BOT_TOKEN",
               "SECRET": "BYBIT_API_SECRET", "PASSWORD": "the broker's own login"}


def _refuse_secrets(raw: Any, file: str, path: str = "") -> None:
    "Raise if any key of `raw` names a credential."
    if isinstance(raw, dict):
        for key, value in raw.items():
            where = f"{path}.{key}" if path else str(key)
            if str(key).upper() in SECRET_KEYS:
                raise ConfigError(file, where, f"secrets are read from the environment "
                                  f"({SECRET_KEYS[str(key).upper()]}), never from config files: remove the key")
            _refuse_secrets(value, file, where)
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            _refuse_secrets(value, file, f"{path}[{i}]")


class Secrets(BaseModel):
    "Credentials and broker endpoints, read from the environment only."
    bybit_api_key: SecretStr | None = None
    bybit_api_secret: SecretStr | None = None
    ib_host: str = "127.0.0.1"
    ib_port: int = 7497
    ib_client_id: int = 1
    telegram_bot_token: SecretStr | None = None
    telegram_chat_ids: list[int] = []


def load_secrets(env: dict | None = None,  # the environment to read; default os.environ
                 ) -> Secrets:
    "Secrets from the environment (`BYBIT_API_KEY`, `IB_PORT`, `TELEGRAM_CHAT_IDS`=comma list, …)."
    env = os.environ if env is None else env
    fields = {name: env[name.upper()] for name in Secrets.model_fields if env.get(name.upper())}
    if "telegram_chat_ids" in fields:
        fields["telegram_chat_ids"] = [c.strip() for c in fields["telegram_chat_ids"].split(",") if c.strip()]
    try:
        return Secrets(**fields)
    except ValidationError as exc:
        raise config_error("environment", exc) from None


# %%
s = load_secrets({"BYBIT_API_KEY": "k-123456", "IB_PORT": "4002", "TELEGRAM_CHAT_IDS": "11, 22"})
test_eq((s.ib_port, s.telegram_chat_ids), (4002, [11, 22]))
assert "k-123456" not in repr(s) and s.bybit_api_key.get_secret_value() == "k-123456"
test_fail(lambda: _refuse_secrets({"TELEGRAM": {"BOT_TOKEN": "x"}}, "config.json"),
          contains="config.json: TELEGRAM.BOT_TOKEN: secrets are read from the environment (TELEGRAM_BOT_TOKEN)")


# %% [markdown]
# ## Reading a file
# Malformed JSON is reported with its line and column; a valid document is checked by its model.

# %%
#| export
def _read_json(path: Path) -> Any:
    if not path.exists():
        raise ConfigError(path.name, "", f"file not found in {path.parent}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(path.name, f"line {exc.lineno} column {exc.colno}", f"malformed JSON ({exc.msg})") from None


def validate_schema(cfg: dict,  # the configuration document
                    schema: str | type[BaseModel] | dict,  # a section name, a model class or a JSON Schema
                    file: str | None = None,  # the file name to put in errors
                    ) -> dict:  # the validated document, defaults filled in
    "Validate `cfg` against a section's model (or a JSON Schema); raise a one-line ConfigError."
    if isinstance(schema, dict):
        return _validate_json_schema(cfg, schema, file or "config")
    model = MODELS[schema] if isinstance(schema, str) else schema
    file = file or next((f"{k}.json" for k, m in MODELS.items() if m is model), model.__name__)
    _refuse_secrets(cfg, file)
    try:
        return model.model_validate(cfg).model_dump(mode="json")
    except ValidationError as exc:
        raise config_error(file, exc) from None


def _validate_json_schema(cfg: dict, schema: dict, file: str) -> dict:
    import jsonschema
    err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(cfg))
    if err is not None:
        raise ConfigError(file, _loc(tuple(err.absolute_path)), err.message)
    return cfg


# %%
test_fail(lambda: validate_schema({"SAFETY": {"MAX_STOP_LOSS_PCT": 20}}, "config"),
          contains="config.json: SAFETY.MAX_STOP_LOSS_PCT: input should be less than or equal to 15 (got 20)")
test_fail(lambda: validate_schema({"SAFETY": {"MAX_STOPLOSS_PCT": 5}}, "config"),
          contains="config.json: SAFETY.MAX_STOPLOSS_PCT: unknown key")
test_fail(lambda: validate_schema({"SAFETY": {"KILL_SWITCH_ENABLED": "maybe"}}, "config"),
          contains="config.json: SAFETY.KILL_SWITCH_ENABLED: input should be a valid boolean")
test_eq(validate_schema({}, "config")["SAFETY"]["MAX_STOP_LOSS_PCT"], 15.0)
_assets = json.loads(Path("../config/assets.json").read_text())
_assets["forex"]["qty_step"] = 0
test_fail(lambda: validate_schema(_assets, "assets"), contains="assets.json: forex.qty_step: input should be greater than 0")
test_fail(lambda: _read_json(Path("../config/nope.json")), contains="nope.json: file not found in ../config")

# %% [markdown]
# The same check with the exported JSON Schema (what an editor uses) accepts the committed files and
# names the same key:

# %%
for section, schema in json_schemas().items():
    validate_schema(json.loads(Path(f"../config/{section}.json").read_text()), schema, f"{section}.json")
test_fail(lambda: validate_schema({"SAFETY": {"MAX_STOP_LOSS_PCT": 30}}, json_schemas()["config"], "config.json"),
          contains="config.json: SAFETY.MAX_STOP_LOSS_PCT:")

# %% [markdown]
# ## Environment overrides
# `TRADINGBOT__SAFETY__CONSECUTIVE_LOSS_KILL=5` overrides a key of `config.json`;
# `TRADINGBOT__ASSETS__FOREX__ENABLED=false` one of `assets.json`. Values are parsed as JSON when they
# can be (numbers, booleans, lists) and otherwise taken as strings; the model then types and checks
# them like file values. Names are matched case-insensitively against existing keys only.

# %%
#| export
ENV_PREFIX = "TRADINGBOT__"


def _match_key(node: dict, part: str, var: str) -> str:
    for key in node:
        if key.lower() == part.lower():
            return key
    raise ConfigError("environment", var, f"unknown key {part!r} (allowed: {', '.join(sorted(node))})")


def apply_env_overrides(docs: dict,  # the section documents {'config': …, 'assets': …, 'strategies': …}
                        env: dict | None = None,  # the environment to read; default os.environ
                        ) -> list[str]:  # the variables applied, sorted
    "Apply `TRADINGBOT__…` variables to the section documents in place; return the variables used."
    env = os.environ if env is None else env
    used = []
    for var in sorted(k for k in env if k.startswith(ENV_PREFIX)):
        parts = var[len(ENV_PREFIX):].split("__")
        section = parts[0].lower() if parts[0].lower() in MODELS else "config"
        parts = parts[1:] if parts[0].lower() in MODELS else parts
        node = docs[section]
        for part in parts[:-1]:
            node = node[_match_key(node, part, var)]
            if not isinstance(node, dict):
                raise ConfigError("environment", var, "does not name a key inside a section")
        node[_match_key(node, parts[-1], var)] = _parse_env_value(env[var])
        used.append(var)
    return used


def _parse_env_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# %% [markdown]
# ## Training first, and the config pin
# Whatever the files say, every asset boots in paper: `live_enabled` is cleared, routing is
# simulation and the start mode is training. `LIVE_TRADING_ENABLED` stays what the operator wrote:
# it is the master permission the runtime checks before an asset may be switched live (after its
# strategy passed validation and two confirmations). The config hash pins exactly what ran.

# %%
#| export
def apply_training_first(docs: dict,  # the section documents, changed in place
                         ) -> list[str]:  # what was overridden, e.g. 'forex.live_enabled=true -> false'
    "Force every asset into paper at boot (in place); return what was overridden."
    notes = []
    safety = docs["config"]["SAFETY"]
    for key, value in (("START_MODE", "training"), ("ORDER_ROUTING", "simulation")):
        if safety[key] != value:
            notes.append(f"SAFETY.{key}={safety[key]!r} -> {value!r}")
            safety[key] = value
    for asset in ASSETS:
        if docs["assets"][asset]["live_enabled"]:
            notes.append(f"{asset}.live_enabled=true -> false")
            docs["assets"][asset]["live_enabled"] = False
    return notes


def config_hash(docs: dict,  # the effective configuration
                ) -> str:  # 64 hex digits
    "sha256 of the effective configuration (canonical JSON; secrets are never part of it)."
    canonical = json.dumps(docs, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def asset_modes(docs: dict,  # the effective configuration
                ) -> dict[str, str]:  # asset -> 'live' or 'paper'
    "The trading mode of each enabled asset: 'live' or 'paper'."
    return {a: "live" if c["live_enabled"] else "paper" for a, c in docs["assets"].items() if c["enabled"]}


# %% [markdown]
# ## A config directory
# `read_config_dir` puts it together: read and check the three files, apply the environment overrides
# and check again (an override obeys the same rules as the file), check cross-references (an asset may
# only name strategies that exist), then apply the boot guard. `config.access.load_config` calls it and
# keeps the result as the current configuration.

# %%
#| export
def read_config_dir(config_dir: str | Path | None = None,  # default $TRADINGBOT_CONFIG_DIR or <repo>/config
                    env: dict | None = None,  # the environment to read overrides from; default os.environ
                    ) -> tuple[dict, list[str], list[str]]:  # (documents, overrides used, boot-guard notes)
    "Validated documents of a config directory, with env overrides and the boot guard: (docs, overrides, notes)."
    config_dir = Path(config_dir or workspace_path("config"))
    docs = {s: validate_schema(_read_json(config_dir / f"{s}.json"), s) for s in MODELS}
    overrides = apply_env_overrides(docs, env)
    docs = {s: validate_schema(d, s, file=f"{s}.json (after environment overrides)" if overrides else None)
            for s, d in docs.items()}
    _check_references(docs)
    return docs, overrides, apply_training_first(docs)


def _check_references(docs: dict) -> None:
    known = docs["strategies"]["strategies"]
    for asset, cfg in docs["assets"].items():
        for i, sid in enumerate(cfg["strategies"]):
            if sid not in known:
                raise ConfigError("assets.json", f"{asset}.strategies[{i}]",
                                  f"unknown strategy {sid!r} (defined in strategies.json: {', '.join(known)})")


# %% [markdown]
# The repository's `config/` loads; overrides from the environment are typed by the model and change
# the hash; an override is checked like a file value; a file that asks for live still boots in paper.

# %%
base, used, _ = read_config_dir("../config", env={})
test_eq((set(base), used), ({"config", "assets", "strategies"}, []))
test_eq(asset_modes(base), {a: "paper" for a in asset_modes(base)})
env = {"TRADINGBOT__SAFETY__CONSECUTIVE_LOSS_KILL": "5", "TRADINGBOT__ASSETS__FOREX__ENABLED": "false"}
docs, used, _ = read_config_dir("../config", env=env)
test_eq((docs["config"]["SAFETY"]["CONSECUTIVE_LOSS_KILL"], docs["assets"]["forex"]["enabled"]), (5, False))
test_eq(used, sorted(env))
assert config_hash(docs) != config_hash(base)
test_eq(config_hash(read_config_dir("../config", env={"TELEGRAM_BOT_TOKEN": "1:x"})[0]), config_hash(base))
test_fail(lambda: read_config_dir("../config", env={"TRADINGBOT__SAFETY__MAX_STOPLOSS_PCT": "5"}),
          contains="environment: TRADINGBOT__SAFETY__MAX_STOPLOSS_PCT: unknown key 'MAX_STOPLOSS_PCT' (allowed: ")
test_eq(read_config_dir("../config", env={"TRADINGBOT__SAFETY__START_MODE": "live"})[2], ["SAFETY.START_MODE='live' -> 'training'"])
test_fail(lambda: read_config_dir("../config", env={"TRADINGBOT__SAFETY__MAX_STOP_LOSS_PCT": "25"}),
          contains="config.json (after environment overrides): SAFETY.MAX_STOP_LOSS_PCT: input should be less than "
                   "or equal to 15 (got 25)")

# %%
with tempfile.TemporaryDirectory() as d:
    for f in Path("../config").glob("*.json"):
        shutil.copy(f, d)
    assets = json.loads((Path(d) / "assets.json").read_text())
    assets["crypto_spot"]["live_enabled"] = True
    (Path(d) / "assets.json").write_text(json.dumps(assets))
    docs, _, notes = read_config_dir(d, env={})
    test_eq(docs["assets"]["crypto_spot"]["live_enabled"], False)  # training first
    test_eq(notes, ["crypto_spot.live_enabled=true -> false"])
    assets["forex"]["strategies"].append("moonshot")
    (Path(d) / "assets.json").write_text(json.dumps(assets))
    test_fail(lambda: read_config_dir(d, env={}), contains="assets.json: forex.strategies[3]: unknown strategy 'moonshot'")
