"""Digest normalisation and where the evidence of one digest lives."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from devops_agent.core.errors import ConfigError
from devops_agent.core.state import state_dir

ATTESTATIONS_DIR = "attestations"
KEYS_DIR = "keys"
SBOM_CDX = "sbom.cdx.json"
SBOM_SPDX = "sbom.spdx.json"
PROVENANCE_DSSE = "provenance.dsse.json"
SBOM_DSSE = "sbom.dsse.json"
PROVENANCE_SIGSTORE = "provenance.sigstore.json"
SBOM_SIGSTORE = "sbom.sigstore.json"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def normalize_digest(value: str, *, field: str = "--digest") -> str:
    """``sha256:<hex>`` or bare ``<hex>`` → lower-case hex; anything else is bad input (exit 2)."""
    text = value.strip()
    if text.lower().startswith("sha256:"):
        text = text[len("sha256:") :]
    text = text.lower()
    if not _HEX64.match(text):
        raise ConfigError(
            f"{value!r} is not a SHA-256 digest",
            "pass sha256:<64 hex characters> (or the 64 hex characters alone)",
            field=field,
        )
    return text


def attestations_root(app_dir: Path) -> Path:
    return state_dir(app_dir) / ATTESTATIONS_DIR


def keys_dir(app_dir: Path) -> Path:
    return state_dir(app_dir) / KEYS_DIR


@dataclass(frozen=True)
class EvidencePaths:
    """The files that make up the evidence of one digest."""

    root: Path
    sha256: str

    @classmethod
    def for_digest(cls, root: Path, sha256: str) -> EvidencePaths:
        return cls(root / f"sha256-{sha256}", sha256)

    @property
    def dir(self) -> Path:
        return self.root

    @property
    def sbom_cdx(self) -> Path:
        return self.root / SBOM_CDX

    @property
    def sbom_spdx(self) -> Path:
        return self.root / SBOM_SPDX

    @property
    def provenance_dsse(self) -> Path:
        return self.root / PROVENANCE_DSSE

    @property
    def sbom_dsse(self) -> Path:
        return self.root / SBOM_DSSE

    @property
    def provenance_sigstore(self) -> Path:
        return self.root / PROVENANCE_SIGSTORE

    @property
    def sbom_sigstore(self) -> Path:
        return self.root / SBOM_SIGSTORE


def evidence_for(app_dir: Path, sha256: str, *, root: Path | None = None) -> EvidencePaths:
    return EvidencePaths.for_digest(root or attestations_root(app_dir), sha256)
