"""CycloneDX 1.6 JSON via cyclonedx-python-lib, validated with its official JSON schema validator."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

from devops_agent._version import __version__
from devops_agent.supplychain.inventory import Component, Inventory

SPEC_VERSION = "1.6"
ARTIFACT_DIGEST_PROPERTY = "devops-agent:artifact-digest"


def _component(c: Component) -> Any:
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType
    from cyclonedx.model.contact import OrganizationalEntity
    from cyclonedx.model.license import LicenseExpression
    from packageurl import PackageURL

    kind = {
        "application": ComponentType.APPLICATION,
        "file": ComponentType.FILE,
        "container": ComponentType.CONTAINER,
    }.get(c.kind, ComponentType.LIBRARY)
    properties = [Property(name="devops-agent:source", value=c.source)] if c.source else []
    if c.kind == "file" and c.sha256:
        properties.append(Property(name=ARTIFACT_DIGEST_PROPERTY, value=f"sha256:{c.sha256}"))
    return CdxComponent(
        name=c.name,
        version=c.version,
        type=kind,
        bom_ref=c.ref,
        supplier=OrganizationalEntity(name=c.supplier) if c.supplier else None,
        purl=PackageURL.from_string(c.purl) if c.purl else None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=c.sha256)] if c.sha256 else None,
        licenses=[LicenseExpression(c.license)] if c.license else None,
        properties=properties or None,
    )


def serial_for(inventory: Inventory, digests: Sequence[str]) -> uuid.UUID:
    """Deterministic serial number: the same build yields the same SBOM identity on re-runs."""
    seed = "|".join([inventory.app.name, inventory.app.version or "", *sorted(digests)])
    return uuid.uuid5(uuid.NAMESPACE_URL, f"devops-agent:sbom:{seed}")


def render_cyclonedx(inventory: Inventory, *, author: str, timestamp: dt.datetime, serial: uuid.UUID) -> str:
    """The inventory as CycloneDX 1.6 JSON text."""
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component as CdxComponent
    from cyclonedx.model.component import ComponentType
    from cyclonedx.model.contact import OrganizationalContact
    from cyclonedx.output.json import JsonV1Dot6

    app = _component(inventory.app)
    tool = CdxComponent(name="devops-agent", version=__version__, type=ComponentType.APPLICATION)
    bom = Bom(
        serial_number=serial,
        metadata=BomMetaData(
            component=app,
            authors=[OrganizationalContact(name=author)],
            timestamp=timestamp,
        ),
    )
    bom.metadata.tools.components.add(tool)
    by_ref: dict[str, Any] = {inventory.app.ref: app}
    for comp in inventory.components:
        cdx = _component(comp)
        bom.components.add(cdx)
        by_ref[comp.ref] = cdx
    # Every ref has exactly one entry in the inventory's graph, so build the Dependency objects
    # directly (Bom.register_dependency searches the whole graph per call: quadratic).
    from cyclonedx.model.dependency import Dependency

    for ref, deps in inventory.dependencies.items():
        bom.dependencies.add(
            Dependency(
                ref=by_ref[ref].bom_ref, dependencies=[Dependency(ref=by_ref[d].bom_ref) for d in deps]
            )
        )
    import warnings

    with warnings.catch_warnings():
        # cyclonedx warns when the root has no dependencies; an app without any is legitimate here.
        warnings.filterwarnings("ignore", message=".*has no defined dependencies.*", category=UserWarning)
        text: str = JsonV1Dot6(bom).output_as_string(indent=2)
    return text


def validate_cyclonedx(text: str) -> list[str]:
    """Errors of the official CycloneDX JSON schema (strict) for the document's spec version."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc.msg} at line {exc.lineno}"]
    if not isinstance(data, dict) or data.get("bomFormat") != "CycloneDX":
        return ['not a CycloneDX document ("bomFormat": "CycloneDX" missing)']
    spec = str(data.get("specVersion", ""))
    try:
        version = SchemaVersion.from_version(spec)
    except ValueError:
        return [f"unsupported CycloneDX specVersion {spec!r} (1.5 or later is required)"]
    if version < SchemaVersion.V1_5:
        return [f"CycloneDX specVersion {spec} is older than 1.5"]
    errors = JsonStrictValidator(version).validate_str(text, all_errors=True)
    if errors is None:
        return []
    out = []
    for error in errors:
        inner = error.data
        where = "/".join(str(p) for p in getattr(inner, "absolute_path", [])) or "(document)"
        out.append(f"{where}: {getattr(inner, 'message', str(error))}")
    return out
