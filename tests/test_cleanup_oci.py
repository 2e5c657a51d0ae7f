"""The OCI layer of the cleanup janitor: manifest parsing (indexes, BuildKit attestations, OCI
subjects, cosign tags) and the registry client (Bearer token flow, retries) on the fake registry."""

from __future__ import annotations

import pytest

from devops_agent.cleanup.oci import (
    DOCKER_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    RegistryClient,
    manifest_json,
    normalize_digest,
    parse_manifest,
    signature_subject,
)
from devops_agent.core.errors import ConfigError, PlatformError
from tests.fakes.registry import FakeRegistry

HEX = "ab" * 32


def test_parse_an_index_with_platform_and_attestation_entries() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": f"sha256:{'1' * 64}",
                "size": 1,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": OCI_MANIFEST,
                "digest": f"sha256:{'2' * 64}",
                "size": 1,
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
        ],
    }
    raw = manifest_json(doc)
    manifest = parse_manifest(raw)
    assert manifest.is_index
    assert manifest.children == (f"sha256:{'1' * 64}", f"sha256:{'2' * 64}")
    assert manifest.size == len(raw)
    assert manifest.digest.startswith("sha256:")


def test_parse_a_docker_manifest_list_without_media_type_in_the_body() -> None:
    raw = manifest_json({"schemaVersion": 2, "manifests": [{"digest": f"sha256:{'3' * 64}", "size": 1}]})
    manifest = parse_manifest(raw, media_type=DOCKER_LIST)
    assert manifest.media_type == DOCKER_LIST
    assert manifest.is_index


def test_parse_an_image_with_blobs_and_a_subject() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"digest": f"sha256:{'4' * 64}", "size": 10},
        "layers": [{"digest": f"sha256:{'5' * 64}", "size": 20}],
        "subject": {"digest": f"sha256:{HEX.upper()}", "size": 1},
    }
    manifest = parse_manifest(manifest_json(doc))
    assert not manifest.is_index
    assert manifest.blobs == ((f"sha256:{'4' * 64}", 10), (f"sha256:{'5' * 64}", 20))
    assert manifest.subject == f"sha256:{HEX}"


def test_bad_manifests_are_platform_errors() -> None:
    with pytest.raises(PlatformError, match="not JSON"):
        parse_manifest(b"{")
    with pytest.raises(PlatformError, match="not a JSON object"):
        parse_manifest(b"[]")


def test_signature_tags_and_digests() -> None:
    assert signature_subject([f"sha256-{HEX}.sig"]) == f"sha256:{HEX}"
    assert signature_subject([f"sha256-{HEX}.att", f"sha256-{HEX}"]) == f"sha256:{HEX}"
    assert signature_subject([f"sha256-{HEX}.sig", "latest"]) is None  # also a real tag: an image
    assert signature_subject([]) is None
    assert normalize_digest(HEX.upper()) == f"sha256:{HEX}"
    assert normalize_digest("1.2.3") == "1.2.3"


def test_registry_urls_must_be_http() -> None:
    assert RegistryClient("ghcr.io").base_url == "https://ghcr.io"
    with pytest.raises(ConfigError, match="not http"):
        RegistryClient("file:///etc")


def test_a_manifest_whose_bytes_do_not_match_its_digest_is_refused() -> None:
    with FakeRegistry() as fake:
        digest = fake.put("octo-org/app", {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})
        media_type, _ = fake.manifests[("octo-org/app", digest)]
        fake.manifests[("octo-org/app", digest)] = (media_type, b'{"schemaVersion":2,"layers":[]} ')
        with pytest.raises(PlatformError, match="misbehaving"):
            RegistryClient(fake.url).get_manifest("octo-org/app", digest)


def test_registry_client_follows_a_bearer_challenge() -> None:
    with FakeRegistry(token="s3cret") as fake:
        digest = fake.put("octo-org/app", {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})
        anonymous = RegistryClient(fake.url)
        with pytest.raises(Exception, match="refused a pull token"):
            anonymous.get_manifest("octo-org/app", digest)
        client = RegistryClient(fake.url, username="user", password="s3cret")
        manifest = client.get_manifest("octo-org/app", digest)
        assert manifest is not None
        assert manifest.digest == digest
        assert client.get_manifest("octo-org/app", digest) is not None
        assert client.requests == 4  # 401, token, manifest; then the cached token: one GET


def test_registry_client_retries_429_and_5xx_then_gives_up_with_an_error() -> None:
    slept: list[float] = []
    with FakeRegistry() as fake:
        digest = fake.put("octo-org/app", {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []})
        fake.fail_next = [429, 503]
        client = RegistryClient(fake.url, sleep=slept.append)
        assert client.get_manifest("octo-org/app", digest) is not None
        assert slept == [2.0, 2.0]  # retry-after honoured
        fake.fail_next = [502] * 4
        with pytest.raises(PlatformError, match="HTTP 502"):
            client.get_manifest("octo-org/app", digest)
        assert client.get_manifest("octo-org/app", "sha256:" + "0" * 64) is None  # 404: not there
