"""NTIA minimum elements, checked on the written documents (not on our model of them).

Data fields per component: supplier, name, version, other unique identifiers (purl or a hash);
dependency relationships; author of the SBOM data; timestamp. A missing element is a finding; the
sbom stage reports findings and fails on them only with ``sbom.fail_on_ntia: true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    format: str  # cyclonedx | spdx
    element: str  # supplier | name | version | unique-id | dependencies | author | timestamp
    component: str  # bom-ref / SPDXID, or "document"
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "format": self.format,
            "element": self.element,
            "component": self.component,
            "message": self.message,
        }


def check_cyclonedx(bom: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    meta = bom.get("metadata") or {}
    if not meta.get("authors") and not (meta.get("tools") or {}).get("components"):
        out.append(Finding("cyclonedx", "author", "document", "metadata.authors is empty"))
    if not meta.get("timestamp"):
        out.append(Finding("cyclonedx", "timestamp", "document", "metadata.timestamp is missing"))
    primary = meta.get("component")
    if not isinstance(primary, Mapping):
        out.append(
            Finding("cyclonedx", "name", "document", "metadata.component (the described software) is missing")
        )
        primary = None
    components = [c for c in bom.get("components") or [] if isinstance(c, Mapping)]
    refs: list[str] = []
    dep_refs = {str(d.get("ref")) for d in bom.get("dependencies") or [] if isinstance(d, Mapping)}
    for comp in [primary, *components] if primary else components:
        ref = str(comp.get("bom-ref") or comp.get("name") or "?")
        refs.append(ref)
        if not comp.get("name"):
            out.append(Finding("cyclonedx", "name", ref, "component has no name"))
        if not comp.get("version"):
            out.append(Finding("cyclonedx", "version", ref, f"{comp.get('name')} has no version"))
        if not (comp.get("supplier") or {}).get("name"):
            out.append(Finding("cyclonedx", "supplier", ref, f"{comp.get('name')} has no supplier"))
        if not (comp.get("purl") or comp.get("cpe") or comp.get("swid") or comp.get("hashes")):
            out.append(
                Finding("cyclonedx", "unique-id", ref, f"{comp.get('name')} has no purl, CPE, SWID or hash")
            )
        if ref not in dep_refs:
            out.append(
                Finding("cyclonedx", "dependencies", ref, f"{comp.get('name')} is absent from dependencies")
            )
    for ref in {r for r in refs if refs.count(r) > 1}:
        out.append(Finding("cyclonedx", "unique-id", ref, f"bom-ref {ref} is not unique"))
    return out


def check_spdx(doc: Mapping[str, Any]) -> list[Finding]:
    out: list[Finding] = []
    info = doc.get("creationInfo") or {}
    if not info.get("creators"):
        out.append(Finding("spdx", "author", "document", "creationInfo.creators is empty"))
    if not info.get("created"):
        out.append(Finding("spdx", "timestamp", "document", "creationInfo.created is missing"))
    packages = [p for p in doc.get("packages") or [] if isinstance(p, Mapping)]
    relationships = [r for r in doc.get("relationships") or [] if isinstance(r, Mapping)]
    described = {
        str(r.get("relatedSpdxElement"))
        for r in relationships
        if r.get("spdxElementId") == doc.get("SPDXID") and r.get("relationshipType") == "DESCRIBES"
    } | {str(x) for x in doc.get("documentDescribes") or []}
    if not described:
        out.append(
            Finding("spdx", "dependencies", "document", "no DESCRIBES relationship names the primary package")
        )
    with_deps = {
        str(r.get("spdxElementId"))
        for r in relationships
        if r.get("relationshipType") in {"DEPENDS_ON", "CONTAINS"}
    } | {
        str(r.get("relatedSpdxElement"))
        for r in relationships
        if r.get("relationshipType") in {"DEPENDENCY_OF", "CONTAINED_BY"}
    }
    ids = [str(p.get("SPDXID")) for p in packages]
    for pkg in packages:
        sid = str(pkg.get("SPDXID") or "?")
        name = pkg.get("name")
        if not pkg.get("versionInfo"):
            out.append(Finding("spdx", "version", sid, f"{name} has no versionInfo"))
        supplier = str(pkg.get("supplier") or "")
        if not supplier or supplier == "NOASSERTION":
            out.append(Finding("spdx", "supplier", sid, f"{name} has no supplier"))
        refs = [r for r in pkg.get("externalRefs") or [] if isinstance(r, Mapping)]
        if not (refs or pkg.get("checksums")):
            out.append(Finding("spdx", "unique-id", sid, f"{name} has no purl/CPE external ref or checksum"))
        if sid in described and sid not in with_deps:
            out.append(
                Finding("spdx", "dependencies", sid, f"{name} has no DEPENDS_ON relationship (not even NONE)")
            )
    for sid in {i for i in ids if ids.count(i) > 1}:
        out.append(Finding("spdx", "unique-id", sid, f"SPDXID {sid} is not unique"))
    return out
