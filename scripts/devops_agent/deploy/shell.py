"""Run user commands and external tools with a deadline; keep the output tail as evidence."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devops_agent.core.errors import StageFailed

TAIL_CHARS = 4000


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    exit_code: int
    output: str  # stdout + stderr, tail only
    seconds: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float,
    stdin_text: str | None = None,
) -> Completed:
    """Run ``argv`` in its own process group; on timeout the whole group is killed."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise StageFailed(
            f"cannot run {argv[0]!r}: {exc.strerror or exc}",
            f"install {argv[0]} or put it on PATH",
        ) from None
    timed_out = False
    try:
        out, _ = proc.communicate(stdin_text, timeout=max(0.1, timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, _ = proc.communicate()
    return Completed(
        tuple(argv), proc.returncode, (out or "")[-TAIL_CHARS:], time.monotonic() - started, timed_out
    )


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def shell(command: str, *, cwd: Path, env: Mapping[str, str] | None = None, timeout: float) -> Completed:
    """A user command: ``bash -eo pipefail -c COMMAND`` in ``cwd``."""
    return run(["bash", "-eo", "pipefail", "-c", command], cwd=cwd, env=env, timeout=timeout)


def require_ok(result: Completed, what: str, fix: str) -> Completed:
    if result.timed_out:
        raise StageFailed(
            f"{what} timed out after {result.seconds:.0f}s\n{result.tail()}",
            fix + " (or raise deploy.timeout_seconds)",
        )
    if result.exit_code != 0:
        raise StageFailed(f"{what} failed with exit code {result.exit_code}\n{result.tail()}", fix)
    return result
