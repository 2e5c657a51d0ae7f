"""The `devops-agent` command line: a thin dispatcher with lazy imports.

Each subcommand lives in its own module exposing ``main(argv) -> int``; nothing heavy is
imported until a subcommand runs, so `devops-agent --version` and `--help` start fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from devops_agent._version import __version__

# name → (module, one-line help). Modules are imported only when their command runs; a command
# whose module is absent from this build is neither listed nor dispatched.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("devops_agent.stages.pipeline", "run every stage locally on an app directory"),
    "config": ("devops_agent.stages.config_cmd", "validate the pipeline configuration"),
    "build": ("devops_agent.stages.build", "run build/test commands, digest artifacts"),
    "scan": ("devops_agent.stages.scan", "run the security scanners, write merged SARIF"),
    "gate": ("devops_agent.stages.gate", "apply the security policy gate to SARIF files"),
    "sbom": ("devops_agent.stages.sbom", "write CycloneDX and SPDX SBOMs"),
    "sign": ("devops_agent.stages.sign", "write and sign SLSA provenance"),
    "verify": ("devops_agent.stages.verify", "verify digest, signature, provenance and SBOM"),
    "deploy": ("devops_agent.stages.deploy", "deploy a verified release"),
    "validate": ("devops_agent.stages.validate", "health checks and smoke tests; rollback on failure"),
    "rollback": ("devops_agent.stages.rollback", "roll back to the last good release"),
    "promote": ("devops_agent.stages.promote", "promote a staging-validated digest to production"),
    "environments": ("devops_agent.stages.environments", "make GitHub environments match a file"),
    "approve": ("devops_agent.stages.review", "approve a pending production deployment"),
    "reject": ("devops_agent.stages.review", "reject a pending production deployment"),
    "pending": ("devops_agent.stages.review", "list deployments waiting for review"),
    "history": ("devops_agent.stages.history", "show the deployment history"),
    "report-failure": ("devops_agent.stages.incidents", "open or update a failure incident"),
    "resolve": ("devops_agent.stages.incidents", "close a failure incident with MTTR"),
    "cleanup": ("devops_agent.stages.cleanup", "plan (and with --execute, do) repository cleanup"),
}


def available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(COMMANDS[name][0]) is not None


USAGE = """usage: devops-agent [--version] [--help] <command> [<args>]

A DevSecOps pipeline for GitHub repositories, runnable locally.

commands:
{commands}

Run `devops-agent <command> --help` for a command's options.
Exit codes: 0 success, 1 failed stage or gate, 2 bad input (nothing changed).
"""


def usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items() if available(name)]
    return USAGE.format(commands="\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        sys.stdout.write(usage())
        return 0 if args else 2
    if args[0] in {"-V", "--version", "version"}:
        sys.stdout.write(f"devops-agent {__version__}\n")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS or not available(name):
        import difflib

        close = difflib.get_close_matches(name, [c for c in COMMANDS if available(c)], n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        sys.stderr.write(
            f"devops-agent: unknown command {name!r}.{hint}\n"
            f"  fix: run `devops-agent --help` for the list of commands\n"
        )
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    # Modules serving several commands (approve/reject/pending) get the command name first.
    if getattr(module, "MULTI_COMMAND", False):
        rest = [name, *rest]
    code: int = module.main(rest)
    return code


def entrypoint() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
