"""sbom stage: the sample app's SBOMs pass the official validators; broken SBOMs are rejected;
NTIA minimum elements are checked; components come from real lock files and environments."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from devops_agent.supplychain.cdx import validate_cyclonedx
from devops_agent.supplychain.inventory import ArtifactRef, Component, build_inventory, parse_requirements
from devops_agent.supplychain.ntia import check_cyclonedx, check_spdx
from devops_agent.supplychain.spdx import validate_spdx
from tests.fixtures.supplychain.helpers import (
    SUPPLIER,
    add_config,
    artifact,
    build_app,
    evidence_dir,
    isolate,
    read_json,
    sbom_app,
)
from tests.fixtures.supplychain.helpers import (
    run as run_main,
)

FIXTURES = Path(__file__).parent / "fixtures" / "supplychain"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate(monkeypatch)


@pytest.fixture
def sboms(sample_app: Path) -> Path:
    add_config(sample_app, f"sbom:\n  supplier: {SUPPLIER}\n")
    build_app(sample_app)
    code, text = sbom_app(sample_app, "--out", str(sample_app / "out"))
    assert code == 0, text
    return sample_app


def test_sample_app_sboms_pass_the_official_validators(sboms: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from spdx_tools.spdx.parser.parse_anything import parse_file
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    cdx_text = (sboms / "out" / "sbom.cdx.json").read_text(encoding="utf-8")
    assert json.loads(cdx_text)["specVersion"] == "1.6"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx_text) is None
    document = parse_file(str(sboms / "out" / "sbom.spdx.json"))
    assert document.creation_info.spdx_version == "SPDX-2.3"
    assert validate_full_spdx_document(document) == []


def test_sboms_are_attached_to_the_artifact_digest(sboms: Path) -> None:
    _, sha256 = artifact(sboms)
    attached = evidence_dir(sboms, sha256)
    for name in ("sbom.cdx.json", "sbom.spdx.json"):
        assert (attached / name).read_bytes() == (sboms / "out" / name).read_bytes()
    bom = read_json(attached / "sbom.cdx.json")
    hashes = [h["content"] for c in bom["components"] for h in c.get("hashes", [])]
    assert sha256 in hashes
    spdx = read_json(attached / "sbom.spdx.json")
    checksums = [c["checksumValue"] for p in spdx["packages"] for c in p.get("checksums", [])]
    assert sha256 in checksums


def test_sample_app_meets_the_ntia_minimum_elements(sboms: Path) -> None:
    bom = read_json(sboms / "out" / "sbom.cdx.json")
    spdx = read_json(sboms / "out" / "sbom.spdx.json")
    assert check_cyclonedx(bom) == []
    assert check_spdx(spdx) == []
    assert bom["metadata"]["component"]["supplier"]["name"] == SUPPLIER
    assert bom["metadata"]["timestamp"]
    assert spdx["creationInfo"]["creators"]
    # the app states explicitly that it has no third-party dependency (requirements.txt is empty)
    assert {"relatedSpdxElement": "NONE", "relationshipType": "DEPENDS_ON"}.items() <= next(
        r for r in spdx["relationships"] if r["relationshipType"] == "DEPENDS_ON"
    ).items()


def test_json_output_and_rerun_is_idempotent(sboms: Path) -> None:
    first = (sboms / "out" / "sbom.cdx.json").read_text(encoding="utf-8")
    code, text = sbom_app(sboms, "--out", str(sboms / "out"), "--json")
    assert code == 0, text
    payload = json.loads(text[text.index("{\n") :])
    assert payload["ntia_findings"] == []
    second = (sboms / "out" / "sbom.cdx.json").read_text(encoding="utf-8")
    assert json.loads(first)["serialNumber"] == json.loads(second)["serialNumber"]


def test_missing_supplier_is_reported_and_fails_only_when_configured(sample_app: Path) -> None:
    build_app(sample_app)
    code, text = sbom_app(sample_app)
    assert code == 0, text
    assert "has no supplier" in text
    assert "NTIA supplier" in text
    code, text = sbom_app(sample_app, "--fail-on-ntia")
    assert code == 1
    assert "NTIA minimum elements (supplier)" in text
    add_config(sample_app, "sbom:\n  fail_on_ntia: true\n")
    code, text = sbom_app(sample_app)
    assert code == 1


def test_sbom_without_a_build_fails_with_a_fix(sample_app: Path) -> None:
    code, text = sbom_app(sample_app)
    assert code == 1
    assert "devops-agent build" in text


def test_bad_requirements_path_is_bad_input(sample_app: Path) -> None:
    build_app(sample_app)
    code, text = sbom_app(sample_app, "--requirements", "nope.txt")
    assert code == 2
    assert "sbom.requirements" in text


# -- deliberately broken SBOMs -----------------------------------------------------------------


def _break_cdx(bom: dict[str, Any], how: str) -> dict[str, Any]:
    bom = copy.deepcopy(bom)
    if how == "bad-component-type":
        bom["components"][0]["type"] = "banana"
    elif how == "bad-hash":
        bom["components"][0]["hashes"][0]["content"] = "not-a-sha256"
    elif how == "old-spec":
        bom["specVersion"] = "1.4"
    elif how == "no-bom-format":
        del bom["bomFormat"]
    elif how == "unknown-field":
        bom["metadata"]["surprise"] = True
    return bom


@pytest.mark.parametrize(
    "how", ["bad-component-type", "bad-hash", "old-spec", "no-bom-format", "unknown-field"]
)
def test_broken_cyclonedx_is_rejected(sboms: Path, how: str) -> None:
    bom = read_json(sboms / "out" / "sbom.cdx.json")
    assert validate_cyclonedx(json.dumps(bom)) == []
    broken = json.dumps(_break_cdx(bom, how))
    assert validate_cyclonedx(broken) != []
    if how in {"bad-component-type", "bad-hash", "unknown-field"}:  # the official validator itself says no
        from cyclonedx.schema import SchemaVersion
        from cyclonedx.validation.json import JsonStrictValidator

        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(broken) is not None


def _break_spdx(doc: dict[str, Any], how: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    if how == "dangling-relationship":
        doc["relationships"].append(
            {
                "spdxElementId": "SPDXRef-DOCUMENT",
                "relationshipType": "DESCRIBES",
                "relatedSpdxElement": "SPDXRef-x",
            }
        )
    elif how == "bad-checksum":
        for package in doc["packages"]:
            for checksum in package.get("checksums", []):
                checksum["checksumValue"] = "abc"
    elif how == "no-spdxid":
        del doc["packages"][0]["SPDXID"]
    elif how == "wrong-version":
        doc["spdxVersion"] = "SPDX-2.2"
    elif how == "bad-namespace":
        doc["documentNamespace"] = "not a uri#fragment"
    return doc


@pytest.mark.parametrize(
    "how", ["dangling-relationship", "bad-checksum", "no-spdxid", "wrong-version", "bad-namespace"]
)
def test_broken_spdx_is_rejected(sboms: Path, how: str) -> None:
    doc = read_json(sboms / "out" / "sbom.spdx.json")
    assert validate_spdx(json.dumps(doc)) == []
    assert validate_spdx(json.dumps(_break_spdx(doc, how))) != []


def test_ntia_checks_name_each_missing_element(sboms: Path) -> None:
    bom = read_json(sboms / "out" / "sbom.cdx.json")
    del bom["metadata"]["timestamp"]
    bom["metadata"]["authors"] = []
    bom["metadata"]["tools"] = {}
    bom["components"][0].pop("version")
    bom["components"][0].pop("hashes")
    bom["dependencies"] = []
    elements = {f.element for f in check_cyclonedx(bom)}
    assert elements == {"timestamp", "author", "version", "unique-id", "dependencies"}
    spdx = read_json(sboms / "out" / "sbom.spdx.json")
    spdx["packages"][0]["supplier"] = "NOASSERTION"
    spdx["relationships"] = [r for r in spdx["relationships"] if r["relationshipType"] != "DEPENDS_ON"]
    elements = {f.element for f in check_spdx(spdx)}
    assert elements == {"supplier", "dependencies"}


# -- real component sources --------------------------------------------------------------------


def test_components_and_graph_come_from_a_real_lock_file(sample_app: Path) -> None:
    lock = FIXTURES / "lockfile" / "requirements.txt"
    pinned = {p.name.lower(): p for p in parse_requirements(lock)}
    assert pinned["pygithub"].version
    assert len(pinned["pygithub"].hashes) >= 1
    add_config(sample_app, f"sbom:\n  supplier: {SUPPLIER}\n  requirements: [{lock}]\n")
    build_app(sample_app)
    code, text = sbom_app(sample_app, "--out", str(sample_app / "out"))
    assert code == 0, text
    bom = read_json(sample_app / "out" / "sbom.cdx.json")
    by_name = {c["name"]: c for c in bom["components"]}
    assert by_name["pygithub"]["version"] == pinned["pygithub"].version
    assert by_name["pygithub"]["purl"] == f"pkg:pypi/pygithub@{pinned['pygithub'].version}"
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    app_ref = bom["metadata"]["component"]["bom-ref"]
    assert by_name["pygithub"]["bom-ref"] in deps[app_ref]  # direct: "# via -r action.in"
    assert by_name["pyjwt"]["bom-ref"] in deps[by_name["pygithub"]["bom-ref"]]  # "# via pygithub"
    assert by_name["pyjwt"]["bom-ref"] not in deps[app_ref]
    assert validate_cyclonedx(json.dumps(bom)) == []
    assert validate_spdx((sample_app / "out" / "sbom.spdx.json").read_text(encoding="utf-8")) == []


def test_components_come_from_the_installed_environment(sample_app: Path) -> None:
    site = sysconfig.get_paths()["purelib"]
    add_config(sample_app, f"sbom:\n  supplier: {SUPPLIER}\n  environments: [{site}]\n")
    build_app(sample_app)
    code, text = sbom_app(sample_app, "--out", str(sample_app / "out"))
    assert code == 0, text
    bom = read_json(sample_app / "out" / "sbom.cdx.json")
    by_name = {c["name"]: c for c in bom["components"]}
    assert by_name["cyclonedx-python-lib"]["version"] == importlib.metadata.version("cyclonedx-python-lib")
    assert by_name["spdx-tools"]["version"] == importlib.metadata.version("spdx-tools")
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in bom["dependencies"]}
    # Requires-Dist of the installed cyclonedx-python-lib names packageurl-python
    assert by_name["packageurl-python"]["bom-ref"] in deps[by_name["cyclonedx-python-lib"]["bom-ref"]]
    assert validate_cyclonedx(json.dumps(bom)) == []
    assert validate_spdx((sample_app / "out" / "sbom.spdx.json").read_text(encoding="utf-8")) == []


def test_vendored_distributions_inside_a_zip_artifact_are_listed(tmp_path: Path) -> None:
    wheel = tmp_path / "bundle.pyz"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("__main__.py", "print('hi')\n")
        archive.writestr(
            "vendor/tinylib-1.2.3.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: tinylib\nVersion: 1.2.3\n"
            "Author: Tiny Team\nLicense-Expression: MIT\n",
        )
    app = Component("pkg:generic/app@1.0.0", "app", "1.0.0", "application", supplier="Org")
    inventory = build_inventory(app, artifacts=[ArtifactRef("bundle.pyz", wheel, "a" * 64)])
    tiny = next(c for c in inventory.components if c.name == "tinylib")
    assert (tiny.version, tiny.supplier, tiny.license) == ("1.2.3", "Tiny Team", "MIT")
    assert tiny.ref in inventory.dependencies["artifact:bundle.pyz"]


def test_action_inputs_and_outputs(sample_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The composite action passes inputs as DEVOPS_AGENT_INPUT_*; outputs land in GITHUB_OUTPUT."""
    from devops_agent.stages import sbom

    build_app(sample_app)
    lock = FIXTURES / "lockfile" / "requirements.txt"
    output = tmp_path / "github_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_APP_DIR", str(sample_app))
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_OUT", str(tmp_path / "sbom-out"))
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_REQUIREMENTS", f"{lock}\n")
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_SUPPLIER", SUPPLIER)
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_FAIL_ON_NTIA", "true")
    code, text = run_main(sbom)
    assert code == 1, text  # lock-file components carry no supplier: NTIA findings fail as asked
    outputs = output.read_text(encoding="utf-8")
    assert str(tmp_path / "sbom-out" / "sbom.cdx.json") in outputs
    assert "ntia-findings" in outputs
    assert "### NTIA minimum elements" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    monkeypatch.setenv("DEVOPS_AGENT_INPUT_FAIL_ON_NTIA", "maybe")
    code, text = run_main(sbom)
    assert code == 2
    assert "fail-on-ntia" in text
