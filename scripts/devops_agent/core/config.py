"""Load and validate ``.github/devops-agent.yml`` into frozen dataclasses.

Parse → validate (JSON Schema, then rules a schema cannot say: no literal secrets) → build
immutable objects. Every error names the field path and the fix; nothing is written.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from devops_agent.core.errors import ConfigError, DevopsAgentError

DEFAULT_CONFIG = ".github/devops-agent.yml"
SCHEMA_NAME = "devops-agent.schema.json"
SCHEMA_LINK = "https://github.com/org/devops-agent/blob/v1/docs/configuration.md"

# Literal credentials we refuse to find in a config file (they belong in secrets/env).
_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a GitHub token", re.compile(r"\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("an AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a Slack token", re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}")),
)


def load_schema(name: str = SCHEMA_NAME) -> dict[str, Any]:
    return dict(_load_schema_cached(name))


@lru_cache(maxsize=8)
def _load_schema_cached(name: str) -> Mapping[str, Any]:
    from importlib import resources

    text = resources.files("devops_agent").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return MappingProxyType(data)


def json_path(parts: Any) -> str:
    """``["build", "commands", 0]`` → ``build.commands[0]``; empty → ``(top level)``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _fix_for(error: Any) -> tuple[str, str]:
    """Turn a jsonschema ValidationError into (field path, fix)."""
    path = json_path(error.absolute_path)
    validator = error.validator
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed)) if isinstance(error.instance, dict) else []
        unknown = extra[0] if extra else "?"
        field_path = f"{path}.{unknown}" if path != "(top level)" else unknown
        close = difflib.get_close_matches(unknown, allowed, n=1)
        hint = f"did you mean `{close[0]}`? " if close else ""
        return field_path, f"{hint}remove it or use one of: {', '.join(allowed)}"
    if validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return path, f"give a value of type {expected} (got {type(error.instance).__name__})"
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else "?"
        target = f"{path}.{name}" if path != "(top level)" else name
        desc = _describe(error.schema, name)
        return target, f"add `{name}`" + (f" ({desc})" if desc else "")
    if validator == "enum":
        options = ", ".join(json.dumps(v) for v in error.validator_value)
        return path, f"use one of: {options}"
    if validator == "const":
        return path, f"use {json.dumps(error.validator_value)}"
    if validator in {"minimum", "maximum", "minItems", "maxItems", "minLength", "pattern"}:
        return path, f"the value must satisfy {validator} {error.validator_value!r}"
    if validator in {"oneOf", "anyOf"}:
        desc = error.schema.get("description", "")
        return path, f"the value must match one of the allowed shapes. {desc}".strip()
    return path, error.message


def _describe(schema: Mapping[str, Any], prop: str) -> str:
    sub = schema.get("properties", {}).get(prop, {})
    return str(sub.get("description", "")) if isinstance(sub, Mapping) else ""


def validate_document(data: Any, schema: Mapping[str, Any], *, source: str) -> list[ConfigError]:
    """All schema errors of ``data`` as ConfigErrors (deterministic order)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    out: list[ConfigError] = []
    for error in errors:
        path, fix = _fix_for(error)
        out.append(ConfigError(f"{source}: {path}: {error.message}", fix, field=None, link=SCHEMA_LINK))
        out[-1].field = path
    return out


def find_literal_secrets(data: Any, parts: tuple[str | int, ...] = ()) -> list[tuple[str, str]]:
    """(field path, kind) of every string that looks like a literal credential."""
    found: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(find_literal_secrets(value, (*parts, str(key))))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(find_literal_secrets(value, (*parts, index)))
    elif isinstance(data, str):
        for kind, pattern in _SECRET_PATTERNS:
            if pattern.search(data):
                found.append((json_path(parts), kind))
    return found


def read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} does not exist",
            f"create it (see examples/sample-app/{DEFAULT_CONFIG}) or pass --config FILE",
            link=SCHEMA_LINK,
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}", "check the path and permissions"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{path}{where}: not valid YAML ({problem})", "fix the YAML syntax at that position"
        ) from None


def check_config_data(data: Any, *, source: str) -> list[ConfigError]:
    """Every problem of a parsed config document (empty list = valid)."""
    if data is None:
        return [
            ConfigError(
                f"{source}: the file is empty", "start from examples/sample-app/.github/devops-agent.yml"
            )
        ]
    errors = validate_document(data, load_schema(), source=source)
    for path, kind in find_literal_secrets(data):
        err = ConfigError(
            f"{source}: {path}: looks like {kind}; secrets must not be written in config files",
            "store it as a repository/environment secret and pass it through an environment variable",
        )
        err.field = path
        errors.append(err)
    return errors


# -- the frozen model ----------------------------------------------------------------------


@dataclass(frozen=True)
class ImageConfig:
    enabled: bool = False
    required: bool = False
    containerfile: str = "Containerfile"
    context: str = "."
    name: str | None = None


@dataclass(frozen=True)
class BuildConfig:
    artifacts: tuple[str, ...]
    commands: tuple[str, ...] = ()
    test_commands: tuple[str, ...] = ()
    version: str | None = None
    timeout_minutes: int = 30
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    image: ImageConfig = field(default_factory=ImageConfig)


@dataclass(frozen=True)
class AppConfig:
    name: str
    dir: str = "."


@dataclass(frozen=True)
class Config:
    """The validated configuration. Stage sections not modelled here are read with section()."""

    app: AppConfig
    build: BuildConfig
    source: Path
    raw: Mapping[str, Any]

    def section(self, name: str) -> Mapping[str, Any]:
        """A read-only view of a top-level section ({} when absent)."""
        value = self.raw.get(name) or {}
        return MappingProxyType(dict(value))


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def build_config(data: Mapping[str, Any], source: Path) -> Config:
    build = dict(data["build"])
    image = dict(build.get("image") or {})
    return Config(
        app=AppConfig(name=data["app"]["name"], dir=data["app"].get("dir", ".")),
        build=BuildConfig(
            artifacts=tuple(build["artifacts"]),
            commands=tuple(build.get("commands", ())),
            test_commands=tuple(build.get("test_commands", ())),
            version=build.get("version"),
            timeout_minutes=int(build.get("timeout_minutes", 30)),
            env=MappingProxyType(dict(build.get("env") or {})),
            image=ImageConfig(
                enabled=bool(image.get("enabled", False)),
                required=bool(image.get("required", False)),
                containerfile=str(image.get("containerfile", "Containerfile")),
                context=str(image.get("context", ".")),
                name=image.get("name"),
            ),
        ),
        source=source,
        raw=_freeze(dict(data)),
    )


def load_config(path: Path) -> Config:
    """Read, validate and freeze a config file; raises the first ConfigError (all are listed)."""
    data = read_yaml(path)
    errors = check_config_data(data, source=str(path))
    if errors:
        raise ConfigErrors(errors)
    return build_config(data, path)


class ConfigErrors(ConfigError):
    """Several configuration problems at once (all reported, exit 2)."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        self.field = errors[0].field
        DevopsAgentError.__init__(self, "\n".join(e.render() for e in errors))


def config_path_for(app_dir: Path, config: str | None) -> Path:
    """The config file: an explicit path, else ``<app>/.github/devops-agent.yml``."""
    if config:
        return Path(config)
    return app_dir / DEFAULT_CONFIG
