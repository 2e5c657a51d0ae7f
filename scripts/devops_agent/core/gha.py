"""GitHub Actions I/O facade: inputs, outputs, summaries, annotations, masking, groups.

Inside GitHub Actions (``GITHUB_ACTIONS=true``) it speaks workflow commands and writes the
``GITHUB_OUTPUT`` / ``GITHUB_STEP_SUMMARY`` files; elsewhere it prints readable terminal text and
keeps outputs/summary in memory (or in files when the variables are set, as tests do).

actions-toolkit does the escaping and the multi-line-safe heredoc delimiters; it is unmaintained,
so it stays behind this module and nothing else imports it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from devops_agent.core.errors import ConfigError

INPUT_PREFIX = "DEVOPS_AGENT_INPUT_"
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}


def input_env_name(name: str) -> str:
    """``dry-run`` → ``DEVOPS_AGENT_INPUT_DRY_RUN``."""
    return INPUT_PREFIX + name.upper().replace("-", "_").replace(" ", "_")


def get_input(
    name: str,
    env: Mapping[str, str] | None = None,
    *,
    default: str = "",
    required: bool = False,
) -> str:
    """Read an action input passed through ``env:`` (never through ``${{ }}`` in ``run:``)."""
    env = os.environ if env is None else env
    value = env.get(input_env_name(name), "").strip()
    if not value:
        if required:
            raise ConfigError(
                "is required but was empty",
                f"pass `{name}:` under `with:` (it reaches us as {input_env_name(name)})",
                field=f"input {name!r}",
            )
        return default
    return value


def get_bool_input(name: str, env: Mapping[str, str] | None = None, *, default: bool) -> bool:
    raw = get_input(name, env)
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(
        f"{raw!r} is not a boolean",
        'use the string "true" or "false"',
        field=f"input {name!r}",
    )


def get_multiline_input(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    return [line.strip() for line in get_input(name, env).splitlines() if line.strip()]


def in_github_actions(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("GITHUB_ACTIONS") == "true"


@dataclass
class Actions:
    """The facade. One instance per command invocation (``Actions.from_env()``)."""

    env: Mapping[str, str]
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    outputs: dict[str, str] = field(default_factory=dict)
    summary_parts: list[str] = field(default_factory=list)
    _masked: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> Actions:
        return cls(env=dict(os.environ if env is None else env), stream=stream or sys.stdout)

    @property
    def github(self) -> bool:
        return in_github_actions(self.env)

    # -- masking -----------------------------------------------------------------------
    def mask(self, secret: str) -> None:
        """Register a secret: GitHub masks it in logs; we also redact it in our own output."""
        if not secret:
            return
        if secret not in self._masked:
            self._masked.append(secret)
        if self.github:
            for line in secret.splitlines():
                if line.strip():
                    self._command("add-mask", {}, line)

    def redact(self, text: str) -> str:
        for secret in sorted(self._masked, key=len, reverse=True):
            text = text.replace(secret, "***")
            for line in secret.splitlines():
                if len(line.strip()) >= 4:
                    text = text.replace(line, "***")
        return text

    # -- printing ----------------------------------------------------------------------
    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _command(self, name: str, properties: dict[str, Any], message: str) -> None:
        from actions_toolkit.command import Command  # lazy: keeps --version fast

        props = {k: v for k, v in properties.items() if v is not None}
        self._write(str(Command(name, props, message)))

    def info(self, message: str) -> None:
        self._write(self.redact(message))

    def debug(self, message: str) -> None:
        if self.github:
            self._command("debug", {}, self.redact(message))
        elif self.env.get("DEVOPS_AGENT_DEBUG") == "1":
            self._write("debug: " + self.redact(message))

    def annotate(
        self,
        level: str,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        end_line: int | None = None,
        title: str | None = None,
    ) -> None:
        """``::error file=…,line=…::message`` in Actions; ``file:line: error: message`` elsewhere."""
        if level not in {"error", "warning", "notice"}:
            raise ValueError(f"unknown annotation level {level!r}")
        message = self.redact(message)
        if self.github:
            props = {"file": file, "line": line, "endLine": end_line, "title": title}
            self._command(level, props, message)
            return
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        heading = f"{title}: " if title else ""
        self._write(f"{where}{level}: {heading}{message}")

    def error(self, message: str, **kwargs: Any) -> None:
        self.annotate("error", message, **kwargs)

    def warning(self, message: str, **kwargs: Any) -> None:
        self.annotate("warning", message, **kwargs)

    def notice(self, message: str, **kwargs: Any) -> None:
        self.annotate("notice", message, **kwargs)

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        if self.github:
            self._write(f"::group::{self.redact(title)}")
        else:
            self._write(f"── {self.redact(title)}")
        try:
            yield
        finally:
            if self.github:
                self._write("::endgroup::")

    # -- outputs -----------------------------------------------------------------------
    def set_output(self, name: str, value: str | int | bool | list[Any] | dict[str, Any]) -> None:
        """Write a step output; values may span lines (random heredoc delimiter)."""
        from actions_toolkit.file_command import prepare_key_value_message

        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if isinstance(value, bool):
            text = "true" if value else "false"
        self.outputs[name] = text
        path = self.env.get("GITHUB_OUTPUT")
        if path:
            with open(path, "a", encoding="utf-8", newline="") as fh:
                fh.write(prepare_key_value_message(name, text) + os.linesep)

    # -- summary -----------------------------------------------------------------------
    def summary(self, markdown: str) -> None:
        """Append markdown to the job summary (GITHUB_STEP_SUMMARY when set)."""
        markdown = self.redact(markdown)
        if not markdown.endswith("\n"):
            markdown += "\n"
        self.summary_parts.append(markdown)
        path = self.env.get("GITHUB_STEP_SUMMARY")
        if path:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(markdown)
        elif not self.github:
            self._write(markdown.rstrip("\n"))


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured markdown table; pipes and newlines in cells are escaped."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", "<br>")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    lines.append("|" + "|".join(" --- " for _ in headers) + "|")
    lines.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines) + "\n"
