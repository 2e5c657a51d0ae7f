"""SPDX 2.3 JSON via spdx-tools, validated with spdx-tools' own document validator."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

from devops_agent._version import __version__
from devops_agent.supplychain.inventory import Component, Inventory

SPDX_VERSION = "SPDX-2.3"


def _model() -> Any:
    """spdx-tools' model module (untyped exports, so reached as Any)."""
    import importlib

    return importlib.import_module("spdx_tools.spdx.model")


def spdx_id(ref: str) -> str:
    """An SPDXID (letters, digits, '.', '-') derived from a component ref."""
    return "SPDXRef-" + re.sub(r"[^A-Za-z0-9.-]+", "-", ref).strip("-")


def _package(c: Component) -> Any:
    m = _model()

    license_value: Any = m.SpdxNoAssertion()
    if c.license:
        from devops_agent.supplychain.inventory import spdx_licensing

        license_value = spdx_licensing().parse(c.license)
    purpose = {
        "application": m.PackagePurpose.APPLICATION,
        "file": m.PackagePurpose.FILE,
        "container": m.PackagePurpose.CONTAINER,
    }.get(c.kind, m.PackagePurpose.LIBRARY)
    return m.Package(
        spdx_id=spdx_id(c.ref),
        name=c.name,
        download_location=m.SpdxNoAssertion(),
        version=c.version,
        file_name=c.file_name,
        supplier=m.Actor(m.ActorType.ORGANIZATION, c.supplier) if c.supplier else m.SpdxNoAssertion(),
        files_analyzed=False,
        checksums=[m.Checksum(m.ChecksumAlgorithm.SHA256, c.sha256)] if c.sha256 else [],
        license_concluded=m.SpdxNoAssertion(),
        license_declared=license_value,
        copyright_text=m.SpdxNoAssertion(),
        external_references=(
            [m.ExternalPackageRef(m.ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", c.purl)]
            if c.purl
            else []
        ),
        primary_package_purpose=purpose,
        source_info=f"devops-agent source: {c.source}" if c.source else None,
    )


def build_spdx_document(inventory: Inventory, *, author: str, timestamp: dt.datetime, namespace: str) -> Any:
    m = _model()

    creation = m.CreationInfo(
        spdx_version=SPDX_VERSION,
        spdx_id="SPDXRef-DOCUMENT",
        name=f"{inventory.app.name}-{inventory.app.version or 'unversioned'}",
        document_namespace=namespace,
        creators=[
            m.Actor(m.ActorType.ORGANIZATION, author),
            m.Actor(m.ActorType.TOOL, f"devops-agent-{__version__}"),
        ],
        created=timestamp.replace(microsecond=0, tzinfo=None),
    )
    packages = [_package(inventory.app), *(_package(c) for c in inventory.components)]
    app_id = spdx_id(inventory.app.ref)
    relationships = [m.Relationship("SPDXRef-DOCUMENT", m.RelationshipType.DESCRIBES, app_id)]
    for comp in inventory.components:
        if comp.kind in {"file", "container"}:
            relationships.append(m.Relationship(app_id, m.RelationshipType.GENERATES, spdx_id(comp.ref)))
    for ref, deps in inventory.dependencies.items():
        source = spdx_id(ref)
        if not deps:
            relationships.append(m.Relationship(source, m.RelationshipType.DEPENDS_ON, m.SpdxNone()))
        for dep in deps:
            relationships.append(m.Relationship(source, m.RelationshipType.DEPENDS_ON, spdx_id(dep)))
    return m.Document(creation_info=creation, packages=packages, relationships=relationships)


def render_spdx(inventory: Inventory, *, author: str, timestamp: dt.datetime, namespace: str) -> str:
    """The inventory as SPDX 2.3 JSON text (spdx-tools validates it while writing)."""
    from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

    document = build_spdx_document(inventory, author=author, timestamp=timestamp, namespace=namespace)
    stream = io.StringIO()
    write_document_to_stream(document, stream, validate=False)
    return stream.getvalue()


def validate_spdx(text: str) -> list[str]:
    """Parse the JSON with spdx-tools and run its full SPDX 2.3 validator; messages of every problem."""
    import importlib

    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return [f"not JSON: {exc.msg} at line {exc.lineno}"]
    if not isinstance(data, dict):
        return ["not an SPDX JSON document (top level is not an object)"]
    if data.get("spdxVersion") != SPDX_VERSION:
        return [f"spdxVersion is {data.get('spdxVersion')!r}, expected {SPDX_VERSION!r}"]
    try:
        parser: Any = importlib.import_module("spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser")
        document = parser.JsonLikeDictParser().parse(data)
    except SPDXParsingError as exc:
        problems: list[str] = exc.get_messages()  # type: ignore[no-untyped-call,unused-ignore]
        return [str(msg) for msg in problems]
    messages = validate_full_spdx_document(document, SPDX_VERSION)
    return [
        f"{m.context.spdx_id or m.context.parent_id or 'document'}: {m.validation_message}" for m in messages
    ]


def validate_spdx_file(path: Path) -> list[str]:
    return validate_spdx(path.read_text(encoding="utf-8"))
