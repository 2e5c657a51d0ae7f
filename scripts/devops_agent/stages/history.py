"""history: the deployment log — a markdown file in the repository and the state store.

Every deploy, validation, rollback (and its time-to-restore) is appended as one table row to
``history.path`` (default ``docs/operations/deployment_history.md``, relative to the app
directory; in CI the job commits it to a branch/PR) and recorded in the state store.
`devops-agent history` prints the recorded deployments (table or --json).

Appending is idempotent: a row with the same environment, digest, status and run is not added
twice, so a re-run job does not duplicate history.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from devops_agent.core.command import Context, add_app_options, argv_list, new_parser, run_command
from devops_agent.core.errors import ConfigError
from devops_agent.core.gha import Actions, get_input, md_table
from devops_agent.deploy.settings import HistorySettings

HEADERS = ["Time (UTC)", "Environment", "Version", "Digest", "Status", "Duration / TTR", "Run", "Notes"]
TITLE = (
    "# Deployment history\n\n"
    "Appended by devops-agent on every deploy, validation and rollback. Newest last.\n\n"
)
STATUS_ICONS = {
    "deployed": "🚀 deployed",
    "validated": "✅ validated",
    "failed": "❌ failed",
    "deploy-failed": "❌ deploy failed",
    "rolled-back": "↩️ rolled back",
    "rollback-failed": "🔥 rollback failed",
    "unchanged": "⏸️ unchanged",
}


@dataclass(frozen=True)
class HistoryRow:
    time: str
    environment: str
    version: str
    digest: str  # sha256:<hex>
    status: str
    duration: str
    run: str
    notes: str = ""

    def cells(self) -> list[str]:
        short = self.digest[:19] if self.digest.startswith("sha256:") else self.digest[:12]
        return [
            self.time,
            self.environment,
            self.version,
            f"`{short}`",
            STATUS_ICONS.get(self.status, self.status),
            self.duration,
            self.run,
            self.notes,
        ]

    def key(self) -> tuple[str, str, str, str]:
        return (self.environment, self.cells()[3], self.cells()[4], self.run)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def seconds_text(seconds: float | None, *, ttr: bool = False) -> str:
    if seconds is None:
        return ""
    text = f"{seconds:.2f}s" if seconds < 60 else f"{seconds / 60:.1f} min"
    return f"TTR {text}" if ttr else text


def _existing_keys(text: str) -> set[tuple[str, str, str, str]]:
    keys: set[tuple[str, str, str, str]] = set()
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith(("| Time", "| ---")):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) >= 7:
            keys.add((cells[1], cells[3], cells[4], cells[6]))
    return keys


def append_history(app_dir: Path, settings: HistorySettings, rows: Sequence[HistoryRow]) -> Path | None:
    """Append rows to the history file (created with its header when missing). Idempotent."""
    if not settings.enabled or not rows:
        return None
    path = app_dir / settings.path
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if "| Time (UTC) |" not in text:
        table_head = md_table(HEADERS, [])
        text = (text.rstrip() + "\n\n" if text.strip() else TITLE) + table_head
    seen = _existing_keys(text)
    new_lines = []
    for row in rows:
        if row.key() in seen:
            continue
        seen.add(row.key())
        new_lines.append(md_table(HEADERS, [row.cells()]).splitlines()[-1])
    if not new_lines:
        if not path.exists():
            path.write_text(text, encoding="utf-8")
        return path
    if not text.endswith("\n"):
        text += "\n"
    path.write_text(text + "\n".join(new_lines) + "\n", encoding="utf-8")
    return path


def read_rows(path: Path) -> list[list[str]]:
    """The table rows of a history file (cells as text)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("| ") and not line.startswith(("| Time", "| ---")):
            rows.append([c.strip() for c in line.strip().strip("|").split(" | ")])
    return rows


# -- the command ---------------------------------------------------------------------------------


def _records(app_dir: Path, environment: str | None, limit: int) -> list[dict[str, Any]]:
    from devops_agent.deploy.records import LocalRecorder

    out = []
    for entry in LocalRecorder(app_dir).entries(environment, limit=limit):
        d = entry.details
        out.append(
            {
                "time": datetime.fromtimestamp(entry.created_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
                "environment": entry.environment,
                "version": entry.release.version,
                "digest": entry.release.ref,
                "status": entry.status,
                "validated": entry.validated,
                "ttr_seconds": d.get("ttr_seconds"),
                "rollback_of": d.get("rollback_of"),
                "run": entry.run_id,
                "driver": entry.driver,
                "url": entry.url,
                "transitions": [asdict(t) for t in entry.transitions],
            }
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    def body() -> int:
        from devops_agent.deploy.settings import history_settings
        from devops_agent.stages.build import load_for

        parser = new_parser("history", "Show the deployment history (state store and history file).")
        add_app_options(parser)
        parser.add_argument(
            "--environment",
            default=get_input("environment", None) or None,
            help="only this environment (action input `environment`)",
        )
        parser.add_argument("--limit", type=int, default=20, help="newest N deployments (default 20)")
        args = parser.parse_args(argv_list(argv))
        if args.limit < 1:
            raise ConfigError("must be at least 1", "pass --limit 20", field="--limit")
        app_dir, config = load_for(args.app, args.config)
        settings = history_settings(config)
        actions = Actions.from_env(stream=sys.stderr if args.json else None)
        records = _records(app_dir, args.environment, args.limit)
        file_path = app_dir / settings.path
        if args.json:
            Context(actions, app_dir).emit_json(
                {"deployments": records, "file": str(file_path), "file_rows": len(read_rows(file_path))}
            )
            return 0
        rows = [
            [
                r["time"],
                r["environment"],
                r["version"],
                f"`{r['digest'][:19]}`",
                r["status"] + (" ✔ validated" if r["validated"] else ""),
                seconds_text(r["ttr_seconds"], ttr=True) if r["ttr_seconds"] is not None else "",
                r["run"] or "",
            ]
            for r in reversed(records)
        ]
        text = f"## 📜 Deployment history of {config.app.name}\n\n"
        if rows:
            text += md_table(["Time (UTC)", "Environment", "Version", "Digest", "Status", "TTR", "Run"], rows)
        else:
            text += "No deployments recorded yet.\n"
        text += f"\nHistory file: `{settings.path}` ({len(read_rows(file_path))} rows)\n"
        sys.stdout.write(text)  # the table is this command's output
        if actions.env.get("GITHUB_STEP_SUMMARY"):
            actions.summary(text)
        return 0

    return run_command(body)
