"""The `deploy`, `validate` and `history` config sections as frozen dataclasses.

The JSON Schema already checked shapes and types; these builders add the rules a schema cannot
say well (the driver's own section must be present, URLs must be http(s) with a host, the two
process ports must differ) and fill defaults. Every problem is a ConfigError naming the field:
exit 2, nothing deployed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError

DRIVERS = ("process", "command", "gitops", "kubectl", "helm")
DEFAULT_AUTHOR = "devops-agent <devops-agent@users.noreply.github.com>"
DEFAULT_HISTORY = "docs/operations/deployment_history.md"


def check_url(value: str, field_name: str) -> str:
    """An absolute http(s) URL with a host; anything else is bad input."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError(
            f"{value!r} is not an absolute http(s) URL",
            "write it as http://host:port/path or https://host/path",
            field=field_name,
        )
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(
            f"{value!r} has an invalid port", "use a port from 1 to 65535", field=field_name
        ) from None
    return value


@dataclass(frozen=True)
class ProcessSettings:
    command: str = "python3 {artifact} --host {host} --port {port}"
    host: str = "127.0.0.1"
    ports: tuple[int, int] = (18081, 18082)
    ready_timeout_seconds: float = 20.0
    stop_timeout_seconds: float = 10.0
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandSettings:
    deploy: str
    rollback: str
    status: str | None = None


@dataclass(frozen=True)
class GitopsSettings:
    repository: str
    path: str
    format: str  # kustomize | helm-values | yaml
    branch: str = "main"
    key: str | None = None
    health_url: str | None = None
    health_command: str | None = None
    health_timeout_seconds: float = 300.0
    token_env: str | None = None
    author: str = DEFAULT_AUTHOR


@dataclass(frozen=True)
class KubectlSettings:
    manifests: tuple[str, ...]
    deployment: str
    namespace: str | None = None
    context: str | None = None
    container: str = "*"
    rollout_timeout_seconds: int = 300


@dataclass(frozen=True)
class HelmSettings:
    release: str
    chart: str
    namespace: str | None = None
    values: tuple[str, ...] = ()
    image_key: str = "image.digest"
    timeout_seconds: int = 300


@dataclass(frozen=True)
class DeploySettings:
    driver: str = "process"
    environment: str = "staging"
    verify: bool = True
    url: str | None = None
    artifact: str | None = None
    image: str | None = None
    timeout_seconds: float = 300.0
    process: ProcessSettings = field(default_factory=ProcessSettings)
    command: CommandSettings | None = None
    gitops: GitopsSettings | None = None
    kubectl: KubectlSettings | None = None
    helm: HelmSettings | None = None


@dataclass(frozen=True)
class HttpCheck:
    name: str
    path: str | None = None
    url: str | None = None
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    body_contains: str | None = None
    json: Mapping[str, Any] = field(default_factory=dict)
    latency_ms: int | None = None

    def target(self, base_url: str | None) -> str:
        if self.url:
            return self.url
        if not base_url:
            raise ConfigError(
                f"check {self.name!r} gives a path but no base URL is known for this environment",
                "set deploy.url (or validate.url), or give the check an absolute `url`",
                field="validate.url",
            )
        return base_url.rstrip("/") + (self.path or "/")


@dataclass(frozen=True)
class ValidateSettings:
    checks: tuple[HttpCheck, ...] = ()
    smoke: tuple[str, ...] = ()
    retries: int = 5
    backoff_seconds: float = 0.5
    timeout_seconds: float = 120.0
    request_timeout_seconds: float = 10.0
    soak_seconds: float = 0.0
    soak_interval_seconds: float = 5.0
    canary_percent: int | None = None
    canary_rounds: int = 10
    rollback: bool = True
    revalidate: bool = True
    url: str | None = None

    @property
    def empty(self) -> bool:
        return not self.checks and not self.smoke


@dataclass(frozen=True)
class HistorySettings:
    path: str = DEFAULT_HISTORY
    enabled: bool = True


# -- builders ------------------------------------------------------------------------------------


def _need(section: Mapping[str, Any] | None, driver: str, example: str) -> Mapping[str, Any]:
    if not section:
        raise ConfigError(
            f"deploy.driver is {driver!r} but the deploy.{driver} section is missing",
            f"add it, e.g.\n  deploy:\n    driver: {driver}\n    {driver}:\n{example}",
            field=f"deploy.{driver}",
        )
    return section


def _strs(value: Sequence[Any] | None) -> tuple[str, ...]:
    return tuple(str(v) for v in (value or ()))


def deploy_settings(config: Config) -> DeploySettings:
    raw = config.section("deploy")
    driver = str(raw.get("driver", "process"))
    if driver not in DRIVERS:  # the schema says so too; kept for configs built in code
        raise ConfigError(
            f"unknown driver {driver!r}", f"use one of: {', '.join(DRIVERS)}", field="deploy.driver"
        )
    url = raw.get("url")
    if url is not None:
        check_url(str(url), "deploy.url")
    p = raw.get("process") or {}
    ports = tuple(int(x) for x in p.get("ports", (18081, 18082)))
    if len(ports) != 2 or ports[0] == ports[1]:
        raise ConfigError(
            f"needs two different ports (got {list(ports)})",
            "give the blue and the green slot, e.g. ports: [18081, 18082]",
            field="deploy.process.ports",
        )
    command_text = str(p.get("command", ProcessSettings.command))
    if "{artifact}" not in command_text or "{port}" not in command_text:
        raise ConfigError(
            f"{command_text!r} must contain {{artifact}} and {{port}}",
            "e.g. python3 {artifact} --host {host} --port {port}",
            field="deploy.process.command",
        )
    process = ProcessSettings(
        command=command_text,
        host=str(p.get("host", "127.0.0.1")),
        ports=(ports[0], ports[1]),
        ready_timeout_seconds=float(p.get("ready_timeout_seconds", 20)),
        stop_timeout_seconds=float(p.get("stop_timeout_seconds", 10)),
        env={str(k): str(v) for k, v in (p.get("env") or {}).items()},
    )
    settings: dict[str, Any] = {}
    if driver == "command" or raw.get("command"):
        c = _need(raw.get("command"), "command", "      deploy: ./deploy.sh\n      rollback: ./rollback.sh")
        for key in ("deploy", "rollback"):
            if not str(c.get(key, "")).strip():
                raise ConfigError(
                    "is required for the command driver",
                    f"give the shell command that does the {key} (the digest is in DEVOPS_AGENT_DIGEST)",
                    field=f"deploy.command.{key}",
                )
        settings["command"] = CommandSettings(
            deploy=str(c["deploy"]), rollback=str(c["rollback"]), status=c.get("status")
        )
    if driver == "gitops" or raw.get("gitops"):
        g = _need(
            raw.get("gitops"),
            "gitops",
            "      repository: https://github.com/org/manifests.git\n"
            "      path: apps/app/kustomization.yaml\n      format: kustomize",
        )
        if g.get("health_url"):
            check_url(str(g["health_url"]), "deploy.gitops.health_url")
        path = str(g["path"])
        if path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(
                f"{path!r} leaves the manifests repository",
                "give a path relative to the repository root",
                field="deploy.gitops.path",
            )
        settings["gitops"] = GitopsSettings(
            repository=str(g["repository"]),
            path=path,
            format=str(g["format"]),
            branch=str(g.get("branch", "main")),
            key=g.get("key"),
            health_url=g.get("health_url"),
            health_command=g.get("health_command"),
            health_timeout_seconds=float(g.get("health_timeout_seconds", 300)),
            token_env=g.get("token_env"),
            author=str(g.get("author", DEFAULT_AUTHOR)),
        )
    if driver == "kubectl" or raw.get("kubectl"):
        k = _need(raw.get("kubectl"), "kubectl", "      manifests: [k8s/]\n      deployment: app")
        settings["kubectl"] = KubectlSettings(
            manifests=_strs(k.get("manifests")),
            deployment=str(k["deployment"]),
            namespace=k.get("namespace"),
            context=k.get("context"),
            container=str(k.get("container", "*")),
            rollout_timeout_seconds=int(k.get("rollout_timeout_seconds", 300)),
        )
    if driver == "helm" or raw.get("helm"):
        h = _need(raw.get("helm"), "helm", "      release: app\n      chart: charts/app")
        settings["helm"] = HelmSettings(
            release=str(h["release"]),
            chart=str(h["chart"]),
            namespace=h.get("namespace"),
            values=_strs(h.get("values")),
            image_key=str(h.get("image_key", "image.digest")),
            timeout_seconds=int(h.get("timeout_seconds", 300)),
        )
    return DeploySettings(
        driver=driver,
        environment=str(raw.get("environment", "staging")),
        verify=bool(raw.get("verify", True)),
        url=url,
        artifact=raw.get("artifact"),
        image=raw.get("image"),
        timeout_seconds=float(raw.get("timeout_seconds", 300)),
        process=process,
        **settings,
    )


def validate_settings(config: Config) -> ValidateSettings:
    raw = config.section("validate")
    checks: list[HttpCheck] = []
    for index, item in enumerate(raw.get("checks") or ()):
        where = f"validate.checks[{index}]"
        if item.get("url"):
            check_url(str(item["url"]), f"{where}.url")
        if not item.get("url") and not item.get("path"):
            raise ConfigError("needs `path` or `url`", "e.g. path: /healthz", field=where)
        checks.append(
            HttpCheck(
                name=str(item.get("name") or item.get("path") or item.get("url")),
                path=item.get("path"),
                url=item.get("url"),
                method=str(item.get("method", "GET")),
                expect_status=tuple(int(s) for s in item.get("expect_status", (200,))),
                body_contains=item.get("body_contains"),
                json=dict(item.get("json") or {}),
                latency_ms=item.get("latency_ms"),
            )
        )
    names = [c.name for c in checks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"check names must be unique; repeated: {', '.join(duplicates)}",
            "give each check its own `name`",
            field="validate.checks",
        )
    url = raw.get("url")
    if url is not None:
        check_url(str(url), "validate.url")
    soak = raw.get("soak") or {}
    canary = raw.get("canary") or {}
    return ValidateSettings(
        checks=tuple(checks),
        smoke=_strs(raw.get("smoke")),
        retries=int(raw.get("retries", 5)),
        backoff_seconds=float(raw.get("backoff_seconds", 0.5)),
        timeout_seconds=float(raw.get("timeout_seconds", 120)),
        request_timeout_seconds=float(raw.get("request_timeout_seconds", 10)),
        soak_seconds=float(soak.get("duration_seconds", 0)),
        soak_interval_seconds=float(soak.get("interval_seconds", 5)),
        canary_percent=int(canary["percent"]) if canary.get("percent") else None,
        canary_rounds=int(canary.get("rounds", 10)),
        rollback=bool(raw.get("rollback", True)),
        revalidate=bool(raw.get("revalidate", True)),
        url=url,
    )


def history_settings(config: Config) -> HistorySettings:
    raw = config.section("history")
    path = str(raw.get("path", DEFAULT_HISTORY))
    if path.startswith("/") or ".." in path.split("/"):
        raise ConfigError(
            f"{path!r} leaves the app directory",
            f"give a relative path such as {DEFAULT_HISTORY}",
            field="history.path",
        )
    return HistorySettings(path=path, enabled=bool(raw.get("enabled", True)))
