"""`process` driver: the release runs as a local process on 127.0.0.1, blue/green.

Two slots (blue = ports[0], green = ports[1]). A new release starts on the idle slot; once it
accepts connections it becomes live and the release it replaces keeps running as `previous`, so a
rollback is a pointer switch to a process that is already warm. The failed release is then
stopped. With a canary the new release starts on the idle slot but the live pointer stays; the
validate stage sends a share of its checks to it and promotes or discards it.

State: ``<app>/.devops-agent/deploy/<environment>/process.json`` (pids, ports, releases), a copy
of every deployed artifact under ``releases/`` (so a rebuilt ``dist/`` cannot change what a
rollback restarts) and one log per release under ``logs/``. Only processes recorded there — and
whose command line still names our release copy (pid reuse) — are ever signalled.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.core.errors import StageFailed
from devops_agent.deploy.base import Deployed, DeployOutcome, DriverContext, DriverStatus, Release

SLOTS = ("blue", "green")
STATE_FILE = "process.json"
# Popen objects of releases started by this interpreter: kept so they are reaped, not leaked.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Slot:
    name: str
    port: int
    pid: int | None
    release: Release | None
    started_at: float | None = None
    log: str | None = None
    copy: str | None = None  # the release copy the process runs (its identity marker)
    config: str | None = None  # fingerprint of the command + env it was started with

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "pid": self.pid,
            "release": self.release.to_json() if self.release else None,
            "started_at": self.started_at,
            "log": self.log,
            "copy": self.copy,
            "config": self.config,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Slot:
        rel = data.get("release")
        return cls(
            name=str(data["name"]),
            port=int(data["port"]),
            pid=data.get("pid"),
            release=Release.from_json(rel) if rel else None,
            started_at=data.get("started_at"),
            log=data.get("log"),
            copy=data.get("copy"),
            config=data.get("config"),
        )


def pid_alive(pid: int | None, marker: str | None) -> bool:
    """True when ``pid`` runs and (where /proc exists) its command line names ``marker``."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is not None:
            _CHILDREN.pop(pid, None)
            return False
    else:
        with contextlib.suppress(ChildProcessError, OSError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: never ours
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[-1].split()[0] in {"Z", "X"}:
                return False
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return False
        return marker is None or marker in cmdline
    return True


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ProcessDriver:
    name = "process"
    supports_canary = True

    def __init__(self, ctx: DriverContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings.process
        self.dir = ctx.state_dir
        self.state_path = self.dir / STATE_FILE

    @property
    def fingerprint(self) -> str:
        """The start-up configuration: a release with the same digest but another command or
        environment (deploy.process.command / env) is a new deployment, blue/green like any other."""
        import hashlib

        blob = json.dumps({"command": self.settings.command, "env": dict(self.settings.env)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # -- state -------------------------------------------------------------------------------
    def _empty(self) -> dict[str, Any]:
        return {
            "version": 1,
            "live": None,
            "previous": None,
            "canary": None,
            "slots": {
                name: Slot(name, port, None, None).to_json()
                for name, port in zip(SLOTS, self.settings.ports, strict=True)
            },
        }

    def _load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return self._empty()
        except (OSError, ValueError) as exc:
            raise StageFailed(
                f"process driver state {self.state_path} is unreadable: {exc}",
                "stop stray releases by hand and delete the file",
            ) from None
        # The ports come from config; a changed config moves idle slots only.
        for name, port in zip(SLOTS, self.settings.ports, strict=True):
            slot = data["slots"].get(name) or Slot(name, port, None, None).to_json()
            if slot.get("pid") is None:
                slot["port"] = port
            data["slots"][name] = slot
        return data

    def _save(self, data: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.state_path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """One deploy/rollback at a time per environment (flock), state saved on success."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / "lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._load()
            self._reap(data)
            yield data
            self._save(data)

    def _slot(self, data: dict[str, Any], name: str | None) -> Slot | None:
        if name is None:
            return None
        return Slot.from_json(data["slots"][name])

    def _alive(self, slot: Slot | None) -> bool:
        return slot is not None and pid_alive(slot.pid, slot.copy)

    def _url(self, slot: Slot) -> str:
        host = self.settings.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{slot.port}"

    def _deployed(self, slot: Slot | None) -> Deployed | None:
        if slot is None or slot.release is None:
            return None
        detail = f"pid {slot.pid}" if self._alive(slot) else "not running"
        return Deployed(slot.release, self._url(slot), slot.name, detail)

    # -- process control -----------------------------------------------------------------------
    def _copy_release(self, release: Release) -> Path:
        if not release.artifact:
            raise StageFailed(
                f"release {release.short} has no artifact file to run",
                "deploy from a build (devops-agent build) or pass --artifact PATH",
            )
        source = Path(release.artifact)
        releases = self.dir / "releases"
        releases.mkdir(parents=True, exist_ok=True)
        target = releases / f"{release.digest}{''.join(source.suffixes[-1:])}"
        if not target.exists() or sha256_file(target) != release.digest:
            if not source.is_file():
                raise StageFailed(
                    f"artifact {source} of release {release.short} is missing",
                    "rebuild it, or roll back to a release whose copy is kept",
                )
            actual = sha256_file(source)
            if actual != release.digest:
                raise StageFailed(
                    f"artifact {source} has sha256 {actual[:12]}…, not the release digest {release.short}…",
                    "the file changed after the build: rebuild and deploy the new digest",
                )
            tmp = target.with_suffix(".partial")
            shutil.copyfile(source, tmp)
            tmp.chmod(0o755)
            tmp.replace(target)
        return target

    def _start(self, data: dict[str, Any], name: str, port: int, release: Release) -> Slot:
        host = self.settings.host
        self._finish_retiring(data, port)
        if port_open(host, port):
            raise StageFailed(
                f"port {port} ({name} slot) is already in use by a process devops-agent did not start",
                f"stop it, or change deploy.process.ports (now {list(self.settings.ports)})",
            )
        copy = self._copy_release(release)
        argv = [
            token.format(artifact=str(copy), host=host, port=port)
            for token in shlex.split(self.settings.command)
        ]
        logs = self.dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}-{release.short}.log"
        env = dict(os.environ)
        env.update(self.settings.env)
        env.update(release.env(self.ctx.environment))
        env.update({"APP_VERSION": release.version, "HOST": host, "PORT": str(port)})
        self.ctx.log(f"starting {release.version} ({release.short}) on the {name} slot: {shlex.join(argv)}")
        with log_path.open("ab") as log:
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=self.ctx.app_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # survives this CLI; signalled as a group
                    close_fds=True,
                )
            except OSError as exc:
                raise StageFailed(
                    f"cannot start {argv[0]!r}: {exc.strerror or exc}",
                    "fix deploy.process.command or install the interpreter",
                ) from None
        _CHILDREN[proc.pid] = proc
        slot = Slot(name, port, proc.pid, release, time.time(), str(log_path), str(copy), self.fingerprint)
        deadline = time.monotonic() + self.settings.ready_timeout_seconds
        while True:
            if proc.poll() is not None:
                _CHILDREN.pop(proc.pid, None)
                raise StageFailed(
                    f"release {release.version} ({release.short}) exited with code {proc.returncode} "
                    f"before listening on port {port}\n{_tail(log_path)}",
                    f"read {log_path}; fix the release or deploy.process.command",
                )
            if port_open(host, port):
                return slot
            if time.monotonic() > deadline:
                self._stop_pid(slot)
                raise StageFailed(
                    f"release {release.version} ({release.short}) did not listen on {host}:{port} within "
                    f"{self.settings.ready_timeout_seconds:g}s\n{_tail(log_path)}",
                    "raise deploy.process.ready_timeout_seconds or fix the release start-up",
                )
            time.sleep(0.05)

    def _stop_pid(self, slot: Slot) -> bool:
        """SIGTERM the slot's process group, SIGKILL after stop_timeout; True when one was stopped."""
        if not self._alive(slot):
            return False
        assert slot.pid is not None
        self.ctx.log(f"stopping {slot.name} slot (pid {slot.pid})")
        _signal_group(slot.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.stop_timeout_seconds
        while self._alive(slot):
            if time.monotonic() > deadline:
                _signal_group(slot.pid, signal.SIGKILL)
                break
            time.sleep(0.02)
        end = time.monotonic() + 5
        while self._alive(slot) and time.monotonic() < end:
            time.sleep(0.02)
        _CHILDREN.pop(slot.pid, None)
        return True

    def _clear(self, data: dict[str, Any], name: str) -> Slot:
        old = Slot.from_json(data["slots"][name])
        self._stop_pid(old)
        empty = Slot(name, self.settings.ports[SLOTS.index(name)], None, None)
        data["slots"][name] = empty.to_json()
        for role in ("live", "previous", "canary"):
            if data.get(role) == name:
                data[role] = None
        return old

    def _retire(self, data: dict[str, Any], name: str) -> Slot:
        """Like _clear, without waiting: SIGTERM now, reaped by a later call (rollback speed)."""
        old = Slot.from_json(data["slots"][name])
        if self._alive(old):
            assert old.pid is not None
            self.ctx.log(f"stopping {name} slot (pid {old.pid}) in the background")
            _signal_group(old.pid, signal.SIGTERM)
            data.setdefault("stopping", []).append(
                {"pid": old.pid, "copy": old.copy, "port": old.port, "since": time.time()}
            )
        data["slots"][name] = Slot(name, self.settings.ports[SLOTS.index(name)], None, None).to_json()
        for role in ("live", "previous", "canary"):
            if data.get(role) == name:
                data[role] = None
        return old

    def _reap(self, data: dict[str, Any]) -> None:
        """Forget retired processes that exited; SIGKILL those past stop_timeout_seconds."""
        keep = []
        for item in data.get("stopping", []):
            if not pid_alive(item.get("pid"), item.get("copy")):
                _CHILDREN.pop(int(item["pid"]), None)
                continue
            if time.time() - float(item.get("since", 0)) > self.settings.stop_timeout_seconds:
                _signal_group(int(item["pid"]), signal.SIGKILL)
            keep.append(item)
        data["stopping"] = keep

    def _finish_retiring(self, data: dict[str, Any] | None, port: int | None = None) -> None:
        """Wait until retired processes (on ``port``, or all) have exited; SIGKILL after the timeout."""
        if not data:
            return
        for item in list(data.get("stopping", [])):
            if port is not None and item.get("port") != port:
                continue
            slot = Slot("retired", int(item.get("port") or 0), int(item["pid"]), None, copy=item.get("copy"))
            deadline = float(item.get("since", 0)) + self.settings.stop_timeout_seconds
            while self._alive(slot) and time.time() < deadline:
                time.sleep(0.02)
            if self._alive(slot):
                self._stop_pid(slot)
        self._reap(data)

    def _prune_copies(self, data: dict[str, Any]) -> None:
        keep = {s.get("copy") for s in data["slots"].values() if s.get("copy")}
        keep |= {s.get("copy") for s in data.get("stopping", []) if s.get("copy")}
        releases = self.dir / "releases"
        if releases.is_dir():
            for path in releases.iterdir():
                if str(path) not in keep and not path.name.endswith(".partial"):
                    path.unlink(missing_ok=True)

    # -- the contract --------------------------------------------------------------------------
    def deploy(self, release: Release, *, canary: bool = False) -> DeployOutcome:
        with self._locked() as data:
            live = self._slot(data, data.get("live"))
            notes: list[str] = []
            if canary and data.get("canary"):
                self._clear(data, data["canary"])
            if canary and not self._alive(live):
                canary = False
                notes.append("nothing is live to compare a canary with: deployed fully")
            if (
                live is not None
                and live.release is not None
                and live.release.digest == release.digest
                and live.config == self.fingerprint
                and self._alive(live)
            ):
                deployed = self._deployed(live)
                assert deployed is not None
                return DeployOutcome(deployed, changed=False, action="unchanged")
            idle_name = SLOTS[1] if live is not None and live.name == SLOTS[0] else SLOTS[0]
            idle = self._slot(data, idle_name)
            assert idle is not None
            same = idle.release is not None and idle.release.digest == release.digest
            if same and idle.config == self.fingerprint and self._alive(idle):
                new = Slot(
                    idle.name, idle.port, idle.pid, release, idle.started_at, idle.log, idle.copy, idle.config
                )
                notes.append(f"reused the running {idle_name} slot (same digest)")
            else:
                if idle.release is not None:
                    notes.append(f"stopped {idle.release.version} on the idle {idle_name} slot")
                self._clear(data, idle_name)
                new = self._start(data, idle_name, idle.port, release)
            data["slots"][idle_name] = new.to_json()
            previous = self._deployed(live)
            if canary:
                data["canary"] = idle_name
                action = "canary"
            else:
                data["previous"] = live.name if live is not None else None
                data["live"] = idle_name
                action = "deployed"
            self._prune_copies(data)
            deployed = self._deployed(new)
            assert deployed is not None
            return DeployOutcome(deployed, changed=True, action=action, previous=previous, notes=tuple(notes))

    def promote_canary(self) -> DeployOutcome:
        with self._locked() as data:
            name = data.get("canary")
            if not name:
                raise StageFailed("no canary to promote", "deploy with a canary first")
            previous = self._deployed(self._slot(data, data.get("live")))
            data["previous"] = data.get("live")
            data["live"] = name
            data["canary"] = None
            deployed = self._deployed(self._slot(data, name))
            assert deployed is not None
            return DeployOutcome(deployed, changed=True, action="promoted", previous=previous)

    def rollback(self, target: Release | None, *, failed: Release | None = None) -> DeployOutcome:
        with self._locked() as data:
            canary_name = data.get("canary")
            if canary_name:
                # A failed canary never took the live pointer: discard it, live stays.
                old = self._retire(data, canary_name)
                still = self._deployed(self._slot(data, data.get("live")))
                if still is None:
                    raise StageFailed("canary discarded but nothing is live", "deploy a release")
                self._prune_copies(data)
                return DeployOutcome(
                    still,
                    changed=True,
                    action="rolled-back",
                    previous=self._deployed(old),
                    notes=("discarded the canary; the live release never changed",),
                )
            live = self._slot(data, data.get("live"))
            prev = self._slot(data, data.get("previous"))
            failed_deployed = self._deployed(live)
            if (
                prev is not None
                and prev.release is not None
                and self._alive(prev)
                and (target is None or prev.release.digest == target.digest)
            ):
                # The warm path: the previous release still runs; switch, then stop the failed one.
                data["live"], data["previous"] = prev.name, None
                if live is not None:
                    self._retire(data, live.name)
                self._prune_copies(data)
                deployed = self._deployed(prev)
                assert deployed is not None
                return DeployOutcome(
                    deployed,
                    changed=True,
                    action="rolled-back",
                    previous=failed_deployed,
                    notes=(f"switched back to the warm {prev.name} slot",),
                )
            if target is None:
                raise StageFailed(
                    "nothing to roll back to: no previous release is kept",
                    "deploy a known-good release explicitly (devops-agent deploy --digest …)",
                )
            # The cold path: restart the target from its kept copy (or artifact) on the other slot.
            other = SLOTS[1] if live is not None and live.name == SLOTS[0] else SLOTS[0]
            self._clear(data, other)
            copy = self.dir / "releases"
            kept = next(iter(copy.glob(f"{target.digest}*")), None) if copy.is_dir() else None
            source = (
                target
                if kept is None
                else Release(target.digest, target.version, str(kept), target.image, target.run_id)
            )
            new = self._start(data, other, self.settings.ports[SLOTS.index(other)], source)
            data["slots"][other] = new.to_json()
            data["live"], data["previous"] = other, None
            if live is not None:
                self._retire(data, live.name)
            self._prune_copies(data)
            deployed = self._deployed(new)
            assert deployed is not None
            return DeployOutcome(
                deployed,
                changed=True,
                action="rolled-back",
                previous=failed_deployed,
                notes=(f"restarted {target.version} on the {other} slot (no warm previous release)",),
            )

    def current(self) -> Deployed | None:
        data = self._load()
        return self._deployed(self._slot(data, data.get("live")))

    def status(self) -> DriverStatus:
        data = self._load()
        live = self._slot(data, data.get("live"))
        return DriverStatus(
            driver=self.name,
            live=self._deployed(live),
            previous=self._deployed(self._slot(data, data.get("previous"))),
            canary=self._deployed(self._slot(data, data.get("canary"))),
            healthy=self._alive(live) if live is not None else None,
            detail=", ".join(
                f"{name}: {'running' if self._alive(Slot.from_json(s)) else 'stopped'}"
                for name, s in sorted(data["slots"].items())
            ),
        )

    def stop(self) -> list[str]:
        """Stop every release this driver started in the environment and forget them."""
        if not self.state_path.exists():
            return []
        stopped: list[str] = []
        with self._locked() as data:
            self._finish_retiring(data)
            for name in SLOTS:
                slot = Slot.from_json(data["slots"][name])
                if self._stop_pid(slot) and slot.release is not None:
                    stopped.append(f"{name}: {slot.release.version} ({slot.release.short}) pid {slot.pid}")
                self._clear(data, name)
            self._prune_copies(data)
        return stopped

    def running_pids(self) -> list[int]:
        """Pids of live processes this driver tracks (tests use it to prove nothing leaks)."""
        data = self._load()
        slots = [Slot.from_json(s) for s in data["slots"].values()]
        slots += [
            Slot("retired", int(i.get("port") or 0), int(i["pid"]), None, copy=i.get("copy"))
            for i in data.get("stopping", [])
        ]
        return [s.pid for s in slots if s.pid is not None and self._alive(s)]


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return
    except PermissionError:
        return
    except OSError as exc:  # pragma: no cover - platform specific
        if exc.errno != errno.ESRCH:
            raise


def _tail(path: Path, lines: int = 12) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
