"""Verify a release before it is deployed (fail closed).

The real check is ``devops_agent.stages.verify.verify_for_deploy`` (digest, signature,
provenance builder/source, SBOM presence). When that module is not part of the installed package,
:func:`digest_only` is the explicit, weaker fallback: the artifact file must exist and hash to the
digest recorded in the build manifest. The evidence says which one ran.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devops_agent.core.config import Config
from devops_agent.core.errors import GateFailed
from devops_agent.deploy.base import Release

Verifier = Callable[[Path, Config, str], Mapping[str, Any]]


def digest_only(app_dir: Path, config: Config, release: Release) -> dict[str, Any]:
    """Fallback: the artifact hashes to the digest the build manifest recorded for it."""
    from devops_agent.stages.build import load_manifest, sha256_file

    try:
        manifest = load_manifest(app_dir)
    except Exception as exc:  # StageFailed: no build here
        raise GateFailed(
            f"cannot verify {release.ref}: {exc}",
            "deploy from the directory the build ran in, or run `devops-agent build` first",
        ) from None
    listed = [a for a in manifest.get("artifacts") or [] if a.get("sha256") == release.digest]
    if not listed:
        raise GateFailed(
            f"{release.ref} is not an artifact of the last build ({manifest.get('version')})",
            "deploy a digest from the build's `digests` output, or rebuild",
        )
    if release.artifact:
        path = Path(release.artifact)
        if not path.is_file():
            raise GateFailed(f"artifact {path} is missing", "rebuild, or pass --artifact PATH")
        actual = sha256_file(path)
        if actual != release.digest:
            raise GateFailed(
                f"artifact {path} hashes to sha256:{actual[:12]}…, not {release.ref[:19]}…",
                "the file changed after the build: rebuild and deploy the new digest",
            )
    return {
        "method": "digest-only (build manifest)",
        "digest": release.ref,
        "artifact": listed[0].get("name"),
    }


def real_verifier() -> Verifier | None:
    """``verify_for_deploy`` when the verify stage is installed, else None."""
    if importlib.util.find_spec("devops_agent.stages.verify") is None:
        return None
    module = importlib.import_module("devops_agent.stages.verify")
    fn = getattr(module, "verify_for_deploy", None)
    return fn if callable(fn) else None


def verify_release(
    app_dir: Path, config: Config, release: Release, *, verifier: Verifier | None = None, enabled: bool = True
) -> dict[str, Any]:
    """Evidence (JSON-able) when the release may be deployed; GateFailed otherwise."""
    if not enabled:
        return {"method": "skipped (deploy.verify: false)", "digest": release.ref}
    fn = verifier if verifier is not None else real_verifier()
    if fn is None:
        return digest_only(app_dir, config, release)
    evidence = dict(fn(app_dir, config, release.ref))
    evidence.setdefault("method", "devops-agent verify (digest, signature, provenance, SBOM)")
    return evidence
