"""SBOM of an OCI image's contents: a real OCI archive (built here, byte by byte) unpacked with
umoci; without umoci the SBOM lists the image by digest and says why."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from devops_agent.supplychain.image import inspect_image, parse_dpkg_status
from devops_agent.supplychain.ntia import check_cyclonedx
from tests.fixtures.supplychain.helpers import (
    SUPPLIER,
    add_config,
    build_app,
    evidence_dir,
    isolate,
    read_json,
    sbom_app,
    sign_app,
    verify_app,
)

UMOCI = shutil.which("umoci")
NEEDS_UMOCI = pytest.mark.skipif(
    UMOCI is None, reason="umoci is not installed: run .ci/setup.d/40-supply-chain.sh (apt-get install umoci)"
)

DPKG_STATUS = """Package: libc6
Status: install ok installed
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Version: 2.36-9+deb12u4
Description: GNU C Library
 multi-line description

Package: base-files
Status: install ok installed
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u5
Depends: libc6 (>= 2.34) | libc6-udeb

Package: removed-thing
Status: deinstall ok config-files
Version: 1.0
"""

METADATA = (
    "Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.3\n"
    "Author-email: Pallets <contact@palletsprojects.com>\n"
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


def _blob(layout: dict[str, bytes], data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    layout[f"blobs/sha256/{digest}"] = data
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_oci_archive(path: Path) -> str:
    """An OCI image layout with one layer, as `buildah push oci-archive:` writes it; returns its digest."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        for name, text in {
            "var/lib/dpkg/status": DPKG_STATUS,
            "usr/lib/python3/dist-packages/Flask-3.0.3.dist-info/METADATA": METADATA,
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    raw = layer.getvalue()
    files: dict[str, bytes] = {}
    layer_desc = _blob(files, gzip.compress(raw, mtime=0))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(raw).hexdigest()}"]},
    }
    config_desc = _blob(files, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_desc}],
    }
    manifest_desc = _blob(files, json.dumps(manifest).encode())
    files["index.json"] = json.dumps(
        {
            "schemaVersion": 2,
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest_desc}],
        }
    ).encode()
    files["oci-layout"] = b'{"imageLayoutVersion": "1.0.0"}'
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(manifest_desc["digest"])


def test_dpkg_status_parsing() -> None:
    packages = {p.name: p for p in parse_dpkg_status(DPKG_STATUS)}
    assert set(packages) == {"libc6", "base-files"}  # the de-installed one is not there
    assert packages["libc6"].version == "2.36-9+deb12u4"
    assert packages["libc6"].maintainer == "GNU Libc Maintainers"
    assert packages["base-files"].depends == ("libc6",)


@NEEDS_UMOCI
def test_umoci_unpacks_the_image_contents(tmp_path: Path) -> None:
    archive = tmp_path / "image.oci.tar"
    make_oci_archive(archive)
    contents = inspect_image(archive)
    assert contents.inspected, contents.note
    assert {p.name for p in contents.debian} == {"libc6", "base-files"}
    assert [(d.name, d.version, d.supplier) for d in contents.python] == [("Flask", "3.0.3", "Pallets")]


def test_without_umoci_the_sbom_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    archive = tmp_path / "image.oci.tar"
    make_oci_archive(archive)
    contents = inspect_image(archive)
    assert not contents.inspected
    assert "umoci is not installed" in contents.note


def test_corrupt_archive_is_reported_not_crashed(tmp_path: Path) -> None:
    archive = tmp_path / "image.oci.tar"
    archive.write_bytes(b"not a tar")
    contents = inspect_image(archive, umoci=UMOCI or "umoci")
    assert not contents.inspected
    assert "cannot read" in contents.note


def _add_image_to_manifest(app: Path) -> str:
    archive = app / "dist" / "sample-app-image.oci.tar"
    digest = make_oci_archive(archive)
    manifest_path = app / ".devops-agent" / "build-manifest.json"
    manifest = read_json(manifest_path)
    manifest["image"] = {
        "name": "ghcr.io/org/sample-app:0.0.0-dev",
        "digest": digest,
        "archive": "dist/sample-app-image.oci.tar",
    }
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return digest


@NEEDS_UMOCI
def test_image_sbom_lists_its_contents_and_is_signed_and_verified(sample_app: Path) -> None:
    add_config(sample_app, f"sbom:\n  supplier: {SUPPLIER}\n")
    build_app(sample_app)
    digest = _add_image_to_manifest(sample_app)
    code, text = sbom_app(sample_app, "--out", str(sample_app / "out"))
    assert code == 0, text
    assert "image contents read with umoci: 2 Debian packages, 1 Python distributions" in text
    bom = read_json(sample_app / "out" / "sbom.cdx.json")
    by_name = {c["name"]: c for c in bom["components"]}
    image = by_name["ghcr.io/org/sample-app:0.0.0-dev"]
    assert image["type"] == "container"
    assert image["hashes"] == [{"alg": "SHA-256", "content": digest.removeprefix("sha256:")}]
    assert by_name["libc6"]["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64"
    assert by_name["flask"]["supplier"]["name"] == "Pallets"
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    assert by_name["libc6"]["bom-ref"] in deps[by_name["base-files"]["bom-ref"]]
    assert check_cyclonedx(bom) == []
    sha = digest.removeprefix("sha256:")
    assert (evidence_dir(sample_app, sha) / "sbom.cdx.json").is_file()
    assert sign_app(sample_app)[0] == 0
    code, text = verify_app(sample_app, "--digest", digest)
    assert code == 0, text
    assert "checked by digest only" in text
