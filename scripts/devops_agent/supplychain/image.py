"""SBOM data for an OCI image: unpack it with umoci and read what is installed inside.

The build stage writes the image as an ``oci-archive`` (a tar of an OCI image layout). We extract
the layout, unpack its root filesystem with ``umoci raw unpack --rootless`` and read Debian's
``var/lib/dpkg/status`` and every ``site-packages``/``dist-packages`` ``*.dist-info``. Without umoci
the image is listed by its digest only, and the SBOM says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from devops_agent.supplychain.inventory import Installed, read_metadata

REF_ANNOTATION = "org.opencontainers.image.ref.name"
_TAG = "devops-agent-sbom"


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    maintainer: str | None
    depends: tuple[str, ...]
    arch: str | None


@dataclass(frozen=True)
class ImageContents:
    debian: tuple[DebPackage, ...]
    python: tuple[Installed, ...]
    note: str  # how the contents were read (or why they were not)
    inspected: bool


def parse_dpkg_status(text: str) -> list[DebPackage]:
    """Installed packages from a dpkg status file (stanzas separated by blank lines)."""
    out = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line[:1] in {" ", "\t"} and key:
                fields[key] += "\n" + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if not fields.get("Package") or not fields.get("Version"):
            continue
        if "installed" not in fields.get("Status", "install ok installed").split():
            continue
        depends = []
        for alt in (fields.get("Depends", "") + "," + fields.get("Pre-Depends", "")).split(","):
            name = alt.split("|")[0].strip().split(" ")[0].split(":")[0]
            if name:
                depends.append(name)
        maintainer = fields.get("Maintainer")
        out.append(
            DebPackage(
                name=fields["Package"],
                version=fields["Version"],
                maintainer=maintainer.split("<", 1)[0].strip() if maintainer else None,
                depends=tuple(sorted(set(depends))),
                arch=fields.get("Architecture"),
            )
        )
    return out


def _python_dirs(rootfs: Path) -> Iterable[Path]:
    for pattern in (
        "usr/lib/python3*/site-packages",
        "usr/local/lib/python3*/site-packages",
        "usr/lib/python3/dist-packages",
        "usr/local/lib/python3*/dist-packages",
        "opt/*/lib/python3*/site-packages",
        "app/*/lib/python3*/site-packages",
    ):
        yield from sorted(p for p in rootfs.glob(pattern) if p.is_dir())


def read_rootfs(rootfs: Path) -> tuple[list[DebPackage], list[Installed]]:
    status = rootfs / "var/lib/dpkg/status"
    debian = (
        parse_dpkg_status(status.read_text(encoding="utf-8", errors="replace")) if status.is_file() else []
    )
    python: list[Installed] = []
    for directory in _python_dirs(rootfs):
        for meta in sorted(directory.glob("*.dist-info/METADATA")):
            rel = meta.parent.relative_to(rootfs).as_posix()
            found = read_metadata(meta.read_text(encoding="utf-8", errors="replace"), f"image:/{rel}")
            if found is not None:
                python.append(found)
    return debian, python


def _tag_layout(layout: Path) -> None:
    """Give the first manifest of index.json a ref name umoci can address."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    manifests = index.get("manifests") or []
    if not manifests:
        raise ValueError("index.json lists no manifest")
    manifests[0].setdefault("annotations", {})[REF_ANNOTATION] = _TAG
    index_path.write_text(json.dumps(index), encoding="utf-8")


def inspect_image(archive: Path, *, umoci: str | None = None, timeout: int = 300) -> ImageContents:
    """Contents of an oci-archive; never raises for a missing tool (the note says what happened)."""
    umoci = umoci if umoci is not None else shutil.which("umoci")
    if umoci is None:
        return ImageContents(
            (), (), "umoci is not installed: image contents not inventoried (digest only)", False
        )
    if not archive.is_file():
        return ImageContents((), (), f"image archive {archive.name} not found: digest only", False)
    with tempfile.TemporaryDirectory(prefix="devops-agent-image-") as tmp:
        layout, rootfs = Path(tmp) / "layout", Path(tmp) / "rootfs"
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(layout, filter="data")
            _tag_layout(layout)
        except (tarfile.TarError, OSError, ValueError, json.JSONDecodeError) as exc:
            return ImageContents((), (), f"cannot read {archive.name} as an OCI archive: {exc}", False)
        proc = subprocess.run(
            [umoci, "raw", "unpack", "--rootless", "--image", f"{layout}:{_TAG}", str(rootfs)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            reason = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["unknown error"]
            return ImageContents((), (), f"umoci could not unpack {archive.name}: {reason[0]}", False)
        debian, python = read_rootfs(rootfs)
    note = (
        f"image contents read with umoci: {len(debian)} Debian packages, {len(python)} Python distributions"
    )
    return ImageContents(tuple(debian), tuple(python), note, True)
