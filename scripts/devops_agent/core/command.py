"""Shared plumbing of every subcommand: common options, context, and the error → exit code edge."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from devops_agent.core.errors import EXIT_BAD_INPUT, EXIT_FAILED, ConfigError, DevopsAgentError
from devops_agent.core.gha import Actions, get_bool_input, get_input


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises ConfigError (exit 2, our message format) instead of exiting."""

    def error(self, message: str) -> Any:
        raise ConfigError(f"{self.prog}: {message}", f"run `{self.prog} --help` for the usage")


def new_parser(prog: str, description: str) -> ArgumentParser:
    return ArgumentParser(prog=f"devops-agent {prog}", description=description)


def add_app_options(parser: argparse.ArgumentParser, *, env: Mapping[str, str] | None = None) -> None:
    """--app, --config, --json; defaults come from action inputs (DEVOPS_AGENT_INPUT_*)."""
    parser.add_argument(
        "--app",
        metavar="DIR",
        default=get_input("app-dir", env, default="."),
        help="application directory (action input `app-dir`; default: .)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=get_input("config", env) or None,
        help="config file (action input `config`; default: <app>/.github/devops-agent.yml)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=get_bool_input("json", env, default=False),
        help="print the result as JSON on stdout",
    )


def add_dry_run(
    parser: argparse.ArgumentParser, *, env: Mapping[str, str] | None = None, default: bool = False
) -> None:
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=get_bool_input("dry-run", env, default=default),
        help="print what would be done and change nothing",
    )


@dataclass
class Context:
    """What a stage needs from its invocation: I/O facade, app directory, output format."""

    actions: Actions
    app_dir: Path
    config_path: Path | None = None
    json_output: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def emit_json(self, payload: Mapping[str, Any], stream: TextIO | None = None) -> None:
        (stream or sys.stdout).write(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def resolve_app_dir(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ConfigError(
            f"app directory {value!r} does not exist or is not a directory",
            "pass --app DIR (action input `app-dir`) pointing at the application",
            field="--app",
        )
    return path.resolve()


def run_command(fn: Callable[[], int], *, actions: Actions | None = None) -> int:
    """Run a subcommand body; turn our exceptions into exit codes and readable errors."""
    actions = actions or Actions.from_env(stream=sys.stderr)
    try:
        return fn()
    except DevopsAgentError as exc:
        title = "invalid input" if exc.exit_code == EXIT_BAD_INPUT else "failed"
        actions.error(exc.render(), title=f"devops-agent: {title}")
        return exc.exit_code
    except KeyboardInterrupt:
        actions.error("interrupted", title="devops-agent")
        return 130
    except Exception as exc:  # an unexpected bug: say so, exit 1, keep the traceback for debug
        import traceback

        actions.error(
            f"internal error: {type(exc).__name__}: {exc}",
            title="devops-agent: internal error (please report it)",
        )
        actions.debug(traceback.format_exc())
        return EXIT_FAILED


def argv_list(argv: Sequence[str] | None) -> list[str]:
    return list(sys.argv[1:] if argv is None else argv)
