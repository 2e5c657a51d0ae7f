"""`devops-agent config validate [FILE]`: check a config file; exit 2 naming every bad field."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from devops_agent.core.command import argv_list, new_parser, run_command
from devops_agent.core.config import DEFAULT_CONFIG, ConfigErrors, load_config
from devops_agent.core.gha import Actions, get_input


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        parser = new_parser("config", "Work with the pipeline configuration.")
        sub = parser.add_subparsers(dest="action", required=True, metavar="validate")
        validate = sub.add_parser("validate", help="validate a config file against the schema")
        validate.add_argument(
            "file",
            nargs="?",
            default=get_input("config", None) or DEFAULT_CONFIG,
            help=f"config file (default: {DEFAULT_CONFIG})",
        )
        validate.add_argument("--json", action="store_true", help="print the result as JSON")
        args = parser.parse_args(argv_list(argv))
        actions = Actions.from_env()
        path = Path(args.file)
        try:
            config = load_config(path)
        except ConfigErrors as exc:
            if args.json:
                import json

                errors = [{"field": e.field, "message": e.render()} for e in exc.errors]
                sys.stdout.write(
                    json.dumps({"valid": False, "file": str(path), "errors": errors}, indent=2) + "\n"
                )
            raise
        if args.json:
            import json

            sys.stdout.write(
                json.dumps({"valid": True, "file": str(path), "app": config.app.name}, indent=2) + "\n"
            )
        else:
            actions.info(f"{path}: valid (app {config.app.name!r})")
        return 0

    return run_command(body)
