"""What an application is made of, read from real sources — never typed by hand.

Sources, in the order they are merged (first one wins for a given package name):

1. lock/requirements files (``sbom.requirements``; default: ``<app>/requirements.txt`` when present):
   pinned ``name==version`` lines with their ``--hash=sha256:`` values; pip-compile's ``# via``
   comments give the dependency graph, anything else is a direct dependency of the app;
2. installed environments (``sbom.environments``: site-packages directories): every distribution's
   metadata (name, version, author/maintainer as supplier, License-Expression, Requires-Dist edges);
3. the build artifacts themselves (the build manifest's digests): each is a ``file`` component with
   its SHA-256, and zip-based artifacts (.whl, .pyz, .zip) are opened to list vendored
   ``*.dist-info`` distributions inside them.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from devops_agent.core.errors import ConfigError

_HASH_RE = re.compile(r"--hash[= ](sha256):([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class Component:
    ref: str  # unique within the SBOM (bom-ref, SPDXID suffix)
    name: str
    version: str | None
    kind: str  # application | library | file
    supplier: str | None = None
    purl: str | None = None
    sha256: str | None = None
    license: str | None = None
    source: str = ""  # where the data came from, e.g. "requirements.txt:12"
    file_name: str | None = None


@dataclass(frozen=True)
class Inventory:
    app: Component
    components: tuple[Component, ...]
    dependencies: Mapping[str, tuple[str, ...]]  # ref → refs it depends on (every ref has an entry)
    notes: tuple[str, ...] = ()

    def component(self, ref: str) -> Component | None:
        if ref == self.app.ref:
            return self.app
        return next((c for c in self.components if c.ref == ref), None)


def canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def pypi_purl(name: str, version: str | None) -> str:
    base = f"pkg:pypi/{canonical(name)}"
    return f"{base}@{version}" if version else base


def pypi_ref(name: str, version: str | None) -> str:
    return pypi_purl(name, version)


# -- requirements / lock files --------------------------------------------------------------------


@dataclass(frozen=True)
class Pinned:
    name: str
    version: str | None
    hashes: tuple[str, ...]
    via: tuple[str, ...]  # canonical parent names; "" = a direct dependency of the app
    where: str


def _logical_lines(text: str) -> Iterable[tuple[int, str, list[str]]]:
    """(line number, requirement line with continuations joined, following comment lines)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        start = i
        line = lines[i]
        while line.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        comments: list[str] = []
        while i < len(lines) and lines[i].strip().startswith("#") and lines[i][:1].isspace():
            comments.append(lines[i].strip().lstrip("#").strip())
            i += 1
        yield start + 1, line, comments


def _via(comments: Sequence[str]) -> tuple[str, ...]:
    parents: list[str] = []
    collecting = False
    for comment in comments:
        if comment.startswith("via"):
            rest = comment[3:].strip()
            collecting = not rest
            if rest:
                parents.append(rest)
        elif collecting and comment:
            parents.append(comment)
    out = []
    for parent in parents:
        if parent.startswith(("-r ", "-c ")) or parent.endswith((".in", ".txt", ".toml")):
            out.append("")
        else:
            out.append(canonical(parent.split()[0].split("[")[0]))
    return tuple(out)


def parse_requirements(path: Path, *, _seen: frozenset[Path] = frozenset()) -> list[Pinned]:
    """Requirements in a pip requirements / pip-compile lock file (recursing into ``-r``)."""
    from packaging.requirements import InvalidRequirement, Requirement

    path = path.resolve()
    if path in _seen:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read requirements file {path.name}: {exc.strerror}",
            "fix the path (relative to the app directory)",
            field="sbom.requirements",
        ) from None
    out: list[Pinned] = []
    for number, line, comments in _logical_lines(text):
        content = line.split(" #", 1)[0].strip()
        if not content or content.startswith("#"):
            continue
        if content.startswith(("-r ", "--requirement ")):
            nested = path.parent / content.split(None, 1)[1].strip()
            out.extend(parse_requirements(nested, _seen=_seen | {path}))
            continue
        if content.startswith("-"):
            continue  # options: --index-url, -c, -e (editable: not a released component)
        hashes = tuple(h.lower() for _, h in _HASH_RE.findall(content))
        spec = _HASH_RE.sub("", content).strip()
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise ConfigError(
                f"{path.name}:{number}: not a requirement ({exc})",
                "fix the line or remove the file from sbom.requirements",
                field="sbom.requirements",
            ) from None
        version = None
        pins = [s.version for s in req.specifier if s.operator in {"==", "==="} and "*" not in s.version]
        if len(pins) == 1:
            version = pins[0]
        out.append(Pinned(req.name, version, hashes, _via(comments) or ("",), f"{path.name}:{number}"))
    return out


# -- installed environments ------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    supplier: str | None
    license: str | None
    requires: tuple[str, ...]  # canonical names (unconditional or marker-true requirements)
    where: str


def _supplier(meta: Mapping[str, str]) -> str | None:
    for key in ("Author", "Maintainer"):
        value = (meta.get(key) or "").strip()
        if value and value.upper() != "UNKNOWN":
            return value
    for key in ("Author-email", "Maintainer-email"):
        value = (meta.get(key) or "").strip()
        if value:
            name = value.split("<", 1)[0].strip().strip('"')
            return name or value
    return None


@lru_cache(maxsize=1)
def spdx_licensing() -> Any:
    """One SPDX licensing index per process (building it costs ~0.1 s; spdx-tools shares it)."""
    from spdx_tools.common.spdx_licensing import spdx_licensing as shared  # type: ignore[import-untyped,unused-ignore]

    return shared


def _license(meta: Mapping[str, str]) -> str | None:
    value = (meta.get("License-Expression") or "").strip()
    if not value:
        return None
    info = spdx_licensing().validate(value)
    return value if not info.errors and not info.invalid_symbols else None


def _requires(lines: Sequence[str]) -> tuple[str, ...]:
    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for line in lines:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None:
            try:
                applies = req.marker.evaluate({"extra": ""})
            except Exception:  # an unknown marker variable: keep the edge out rather than guess
                applies = False
            if not applies:
                continue
        out.append(canonical(req.name))
    return tuple(sorted(set(out)))


def read_metadata(text: str, where: str) -> Installed | None:
    headers = HeaderParser().parsestr(text, headersonly=True)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        return None
    meta = {k: str(v) for k, v in headers.items()}
    return Installed(
        name=str(name),
        version=str(version),
        supplier=_supplier(meta),
        license=_license(meta),
        requires=_requires([str(v) for v in headers.get_all("Requires-Dist") or []]),
        where=where,
    )


def scan_site_packages(path: Path) -> list[Installed]:
    """Every ``*.dist-info`` distribution in a site-packages directory."""
    if not path.is_dir():
        raise ConfigError(
            f"{path} is not a directory",
            "point sbom.environments at a site-packages directory (e.g. .venv/lib/python3.11/site-packages)",
            field="sbom.environments",
        )
    out = []
    for meta in sorted(path.glob("*.dist-info/METADATA")):
        found = read_metadata(
            meta.read_text(encoding="utf-8", errors="replace"), f"{path.name}/{meta.parent.name}"
        )
        if found is not None:
            out.append(found)
    return out


def scan_zip(path: Path) -> list[Installed]:
    """Distributions vendored inside a zip-based artifact (wheel, zipapp, zip)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if re.search(r"[^/]+\.dist-info/METADATA$", n)]
            out = []
            for name in sorted(names):
                text = archive.read(name).decode("utf-8", errors="replace")
                found = read_metadata(text, f"{path.name}!/{name}")
                if found is not None:
                    out.append(found)
            return out
    except (zipfile.BadZipFile, OSError):
        return []


@dataclass(frozen=True)
class ImageRef:
    name: str
    sha256: str | None
    contents: Any  # image.ImageContents


# -- merge -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtifactRef:
    name: str
    path: Path
    sha256: str


@dataclass
class _Builder:
    app: Component
    components: dict[str, Component] = field(default_factory=dict)
    by_name: dict[str, str] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, component: Component) -> str:
        key = canonical(component.name) if component.kind == "library" else component.ref
        if key in self.by_name:
            return self.by_name[key]
        self.components[component.ref] = component
        self.by_name[key] = component.ref
        self.edges.setdefault(component.ref, set())
        return component.ref


def build_inventory(
    app: Component,
    *,
    requirements: Sequence[Path] = (),
    environments: Sequence[Path] = (),
    artifacts: Sequence[ArtifactRef] = (),
    image: ImageRef | None = None,
) -> Inventory:
    b = _Builder(app)
    b.edges[app.ref] = set()
    pinned: list[Pinned] = []
    for req_file in requirements:
        pinned.extend(parse_requirements(req_file))
    for p in pinned:
        b.add(
            Component(
                ref=pypi_ref(p.name, p.version),
                name=canonical(p.name),
                version=p.version,
                kind="library",
                purl=pypi_purl(p.name, p.version),
                sha256=p.hashes[0] if len(p.hashes) == 1 else None,
                source=p.where,
            )
        )
    installed: list[Installed] = []
    for env_dir in environments:
        installed.extend(scan_site_packages(env_dir))
    for dist in installed:
        b.add(
            Component(
                ref=pypi_ref(dist.name, dist.version),
                name=canonical(dist.name),
                version=dist.version,
                kind="library",
                supplier=dist.supplier,
                purl=pypi_purl(dist.name, dist.version),
                license=dist.license,
                source=dist.where,
            )
        )
    # Enrich lockfile components with environment metadata of the same version (supplier, license).
    env_meta = {(canonical(d.name), d.version): d for d in installed}
    for ref, comp in list(b.components.items()):
        meta = env_meta.get((comp.name, comp.version or ""))
        if meta and (comp.supplier is None or comp.license is None):
            b.components[ref] = Component(
                **{
                    **comp.__dict__,
                    "supplier": comp.supplier or meta.supplier,
                    "license": comp.license or meta.license,
                }
            )
    # Edges: lockfile "via" first, then installed Requires-Dist, restricted to known components.
    direct: set[str] = set()
    for p in pinned:
        ref = b.by_name[canonical(p.name)]
        for parent in p.via:
            if parent == "" or parent not in b.by_name:
                direct.add(ref)
            else:
                b.edges[b.by_name[parent]].add(ref)
    required: set[str] = set()
    for dist in installed:
        ref = b.by_name[canonical(dist.name)]
        for dep in dist.requires:
            if dep in b.by_name:
                b.edges[ref].add(b.by_name[dep])
                required.add(b.by_name[dep])
    if not pinned:  # environment only: top-level distributions are the app's direct dependencies
        direct |= {b.by_name[canonical(d.name)] for d in installed} - required
    b.edges[app.ref] = direct
    for art in artifacts:
        art_ref = b.add(
            Component(
                ref=f"artifact:{art.name}",
                name=art.name,
                version=app.version,
                kind="file",
                supplier=app.supplier,
                sha256=art.sha256,
                source="build manifest",
                file_name=art.name,
            )
        )
        b.edges[art_ref] = set(direct)
        for dist in scan_zip(art.path) if art.path.is_file() else []:
            ref = b.add(
                Component(
                    ref=pypi_ref(dist.name, dist.version),
                    name=canonical(dist.name),
                    version=dist.version,
                    kind="library",
                    supplier=dist.supplier,
                    purl=pypi_purl(dist.name, dist.version),
                    license=dist.license,
                    source=dist.where,
                )
            )
            b.edges[art_ref].add(ref)
        if not art.path.is_file():
            b.notes.append(f"artifact {art.name} is not on disk here; listed by its digest only")
    if image is not None:
        _add_image(b, image, direct)
    return Inventory(
        app=app,
        components=tuple(b.components.values()),
        dependencies=MappingProxyType({k: tuple(sorted(v)) for k, v in b.edges.items()}),
        notes=tuple(b.notes),
    )


def _add_image(b: _Builder, image: ImageRef, direct: set[str]) -> None:
    """The OCI image as a container component, with what umoci found inside it."""
    contents = image.contents
    img_ref = b.add(
        Component(
            ref=f"image:{image.name}",
            name=image.name,
            version=b.app.version,
            kind="container",
            supplier=b.app.supplier,
            purl=None,
            sha256=image.sha256,
            source=contents.note,
        )
    )
    deb_refs: dict[str, str] = {}
    for deb in contents.debian:
        purl = f"pkg:deb/debian/{deb.name}@{deb.version}" + (f"?arch={deb.arch}" if deb.arch else "")
        deb_refs[deb.name] = b.add(
            Component(
                ref=purl,
                name=deb.name,
                version=deb.version,
                kind="library",
                supplier=deb.maintainer,
                purl=purl,
                source="image:/var/lib/dpkg/status",
            )
        )
    required: set[str] = set()
    for deb in contents.debian:
        for dep in deb.depends:
            if dep in deb_refs and deb_refs[dep] != deb_refs[deb.name]:
                b.edges[deb_refs[deb.name]].add(deb_refs[dep])
                required.add(deb_refs[dep])
    py_refs = {}
    for dist in contents.python:
        py_refs[canonical(dist.name)] = b.add(
            Component(
                ref=f"image:{pypi_ref(dist.name, dist.version)}",
                name=canonical(dist.name),
                version=dist.version,
                kind="library",
                supplier=dist.supplier,
                purl=pypi_purl(dist.name, dist.version),
                license=dist.license,
                source=dist.where,
            )
        )
    for dist in contents.python:
        for dep in dist.requires:
            if dep in py_refs:
                b.edges[py_refs[canonical(dist.name)]].add(py_refs[dep])
                required.add(py_refs[dep])
    b.edges[img_ref] = (set(deb_refs.values()) | set(py_refs.values())) - required | (
        set() if contents.inspected else set(direct)
    )
