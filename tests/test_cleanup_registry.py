"""Real images on a real registry: docker-registry (CNCF distribution) on 127.0.0.1 with a temporary
config, multi-arch OCI images pushed with skopeo from OCI layouts generated here, a cosign-style
signature tag and an OCI 1.1 referrer. The janitor resolves the image graph through the registry
API, plans, deletes; then every kept tag must still copy completely (``skopeo copy --all``).

Install the tools with ``.ci/setup.d/40-registry.sh`` (Debian packages docker-registry, skopeo).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from devops_agent.cleanup.collect import RegistryManifests
from devops_agent.cleanup.oci import OCI_INDEX, OCI_MANIFEST, RegistryClient
from devops_agent.cleanup.policy import policy_from_data
from devops_agent.core.platform import PackageOwner, RepoRef
from devops_agent.core.state import StateStore
from devops_agent.platform.local import LocalPlatform
from devops_agent.stages.cleanup import Janitor

REGISTRY = (
    os.environ.get("DEVOPS_AGENT_REGISTRY_BIN")
    or shutil.which("docker-registry")
    or "/usr/bin/docker-registry"
)
SKOPEO = os.environ.get("DEVOPS_AGENT_SKOPEO_BIN") or shutil.which("skopeo") or ""
HOW = "install docker-registry and skopeo with .ci/setup.d/40-registry.sh (Debian packages)"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(REGISTRY).is_file() and SKOPEO), reason=f"docker-registry/skopeo missing: {HOW}"
    ),
]

OWNER = PackageOwner("org", "octo-org")
NOW = datetime.now(timezone.utc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: error}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '127.0.0.1:{port}'}}\n"
    )
    proc = subprocess.Popen(
        [REGISTRY, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):  # bounded: 10 s
            try:
                with urllib.request.urlopen(f"{url}/v2/", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        else:
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            pytest.fail(f"docker-registry did not start: {stderr}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ------------------------------------------------------------------------------------------------
# OCI layouts generated here
# ------------------------------------------------------------------------------------------------


@dataclass
class Layout:
    path: Path

    def blob(self, data: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path / "blobs" / "sha256" / digest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def json_blob(self, doc: dict[str, Any], media_type: str) -> dict[str, Any]:
        return {"mediaType": media_type, **self.blob(json.dumps(doc, sort_keys=True).encode())}

    def image(self, label: str, arch: str, *, subject: dict[str, Any] | None = None) -> dict[str, Any]:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            data = f"{label} {arch}\n".encode()
            info = tarfile.TarInfo(f"{label}.txt")
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
        layer_tar = raw.getvalue()
        layer = {
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            **self.blob(gzip.compress(layer_tar, mtime=0)),
        }
        config = self.json_blob(
            {
                "architecture": arch,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
                "config": {"Labels": {"label": label}},
            },
            "application/vnd.oci.image.config.v1+json",
        )
        doc: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config,
            "layers": [layer],
        }
        if subject is not None:
            doc["subject"] = subject
        return {**self.json_blob(doc, OCI_MANIFEST), "platform": {"architecture": arch, "os": "linux"}}

    def index(
        self, label: str, arches: tuple[str, ...] = ("amd64", "arm64")
    ) -> tuple[dict[str, Any], list[str]]:
        children = [self.image(label, arch) for arch in arches]
        doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}
        return self.json_blob(doc, OCI_INDEX), [c["digest"] for c in children]

    def write_index(self, top: dict[str, Any], tag: str) -> None:
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        entry = {k: v for k, v in top.items() if k != "platform"}
        entry["annotations"] = {"org.opencontainers.image.ref.name": tag}
        (self.path / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


def skopeo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SKOPEO, *args], capture_output=True, text=True, timeout=120, check=False)


def push(tmp: Path, registry: str, repo: str, tag: str, build: Any) -> tuple[str, list[str]]:
    """Build a layout with ``build(layout) -> (top descriptor, children)`` and push it with skopeo."""
    layout = Layout(tmp / f"{repo.replace('/', '_')}-{tag}")
    top, children = build(layout)
    layout.write_index(top, tag)
    host = registry.removeprefix("http://")
    done = skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{layout.path}:{tag}",
        f"docker://{host}/{repo}:{tag}",
    )
    assert done.returncode == 0, done.stderr
    return str(top["digest"]), children


def copy_all(registry: str, ref: str, dest: Path) -> subprocess.CompletedProcess[str]:
    host = registry.removeprefix("http://")
    return skopeo("copy", "--all", "--src-tls-verify=false", f"docker://{host}/{ref}", f"oci:{dest}:x")


def test_janitor_resolves_real_multi_arch_images_and_never_breaks_a_kept_tag(
    registry: str, tmp_path: Path
) -> None:
    repo = "octo-org/app"
    old, old_children = push(tmp_path, registry, repo, "v0.9", lambda lay: lay.index("old"))
    new, new_children = push(tmp_path, registry, repo, "v1.0", lambda lay: lay.index("new"))
    deployed, deployed_children = push(tmp_path, registry, repo, "v0.8", lambda lay: lay.index("deployed"))
    # a cosign-style signature of the new image and an OCI 1.1 referrer (attestation) of the old one
    sig_tag = "sha256-" + new.split(":")[1] + ".sig"
    sig, _ = push(tmp_path, registry, repo, sig_tag, lambda lay: (lay.image("sig", "amd64"), []))
    subject = {"mediaType": OCI_INDEX, "digest": old, "size": 1}
    ref, _ = push(
        tmp_path, registry, repo, "tmp-ref", lambda lay: (lay.image("att", "amd64", subject=subject), [])
    )

    # The real registry serves what we pushed, digests intact.
    client = RegistryClient(registry)
    index = client.get_manifest(repo, new)
    assert index is not None
    assert index.is_index
    assert set(index.children) == set(new_children)
    referrer = client.get_manifest(repo, ref)
    assert referrer is not None
    assert referrer.subject == old

    # The packages listing (what GHCR's API would return) lives in the local platform.
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    store = StateStore.for_app(app_dir)  # the deploy stage records deployments here
    platform = LocalPlatform(store, repo=RepoRef("octo-org", "app"))
    ages = {old: 90, new: 1, deployed: 120, sig: 1, ref: 90}
    tags = {
        old: ["v0.9"],
        new: ["v1.0"],
        deployed: ["v0.8"],
        sig: [sig_tag],
        ref: [],
    }  # "tmp-ref" untagged on GHCR
    for children, parent in ((old_children, old), (new_children, new), (deployed_children, deployed)):
        for child in children:
            ages[child], tags[child] = ages[parent], []
    for digest, days in sorted(ages.items(), key=lambda kv: -kv[1]):
        platform.record_package_version(
            OWNER,
            "container",
            "app",
            digest,
            tags[digest],
            created_at=(NOW - timedelta(days=days)).timestamp(),
        )
    store.record_deployment("production", deployed.split(":")[1], version="0.8", run_id="1", status="success")

    policy = policy_from_data(
        {
            "version": 1,
            "packages": [
                {
                    "name": "app",
                    "owner": "octo-org",
                    "owner_kind": "org",
                    "max_age": "30d",
                    "keep_newest": 1,
                    "registry": registry,
                }
            ],
            "deletions": {"write_interval": 0},
        }
    )
    manifests = RegistryManifests()
    janitor = Janitor(policy, platform, app_dir, manifests, None, {})
    plan = janitor.plan(("packages",), NOW)
    doomed = {d.name.split(" ", 1)[0] for d in plan.deletions}
    assert doomed == {old, *old_children, ref}
    assert manifests.requests == len(ages)  # one GET per version, no auth round trip here
    outcomes = janitor.act(plan)
    assert {o.status for o in outcomes} == {"deleted"}
    assert {v.name for v in platform.list_package_versions(OWNER, "container", "app")} == set(ages) - doomed

    # Mirror the deletions on the real registry, in the plan's order, then prove nothing kept broke.
    for deletion in plan.deletions:
        digest = deletion.name.split(" ", 1)[0]
        request = urllib.request.Request(f"{registry}/v2/{repo}/manifests/{digest}", method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 202
    for tag in ("v1.0", "v0.8", sig_tag):
        done = copy_all(registry, f"{repo}:{tag}", tmp_path / f"pull-{tag}")
        assert done.returncode == 0, f"{tag}: {done.stderr}"
    assert copy_all(registry, f"{repo}:v0.9", tmp_path / "pull-old").returncode != 0
    # A second plan on the new state deletes nothing.
    assert janitor.plan(("packages",), NOW).deletions == ()
    store.close()
