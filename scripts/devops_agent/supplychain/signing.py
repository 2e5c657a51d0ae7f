"""DSSE signing and verification of in-toto statements.

Two signers, one envelope format:

* **key** (local and offline, or in CI with a key from a secret): an ed25519 (or ECDSA P-256/384)
  key through securesystemslib's ``CryptoSigner``; the private key is generated on first use into
  ``<app>/.devops-agent/keys/signing.key`` (mode 0600, never printed) and its public half is written
  beside it as ``signing.pub`` — the key ``verify`` trusts unless ``sign.public_keys`` says otherwise.
* **sigstore** (GitHub Actions, keyless): a Fulcio certificate bound to the workflow's OIDC identity,
  the DSSE envelope logged in Rekor, stored as a Sigstore bundle. Verification checks the bundle
  against Sigstore's trusted root (offline, embedded in sigstore-python) and an identity policy
  (issuer + workflow identity).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.core.config import Config
from devops_agent.core.errors import ConfigError, GateFailed, StageFailed
from devops_agent.supplychain.layout import keys_dir
from devops_agent.supplychain.provenance import PAYLOAD_TYPE

PRIVATE_KEY_NAME = "signing.key"
PUBLIC_KEY_NAME = "signing.pub"
KEY_ENV = "DEVOPS_AGENT_SIGNING_KEY"  # PEM of the private key (a CI secret); takes precedence
GITHUB_OIDC_ISSUER = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True)
class KeyLocation:
    private: Path
    public: Path
    default: bool  # the default location may be created on first use


def key_location(app_dir: Path, config: Config) -> KeyLocation:
    configured = str(config.section("sign").get("key") or "")
    if configured:
        private = Path(configured)
        if not private.is_absolute():
            private = app_dir / private
        return KeyLocation(private, private.with_suffix(".pub"), default=False)
    base = keys_dir(app_dir)
    return KeyLocation(base / PRIVATE_KEY_NAME, base / PUBLIC_KEY_NAME, default=True)


def _public_pem(private_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    data: bytes = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return data


def _write_private(path: Path, pem: bytes) -> None:
    """Create the key file with mode 0600 from the start (no window with looser permissions)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)


def _load_private_pem(pem: bytes, source: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot load the signing key from {source}: {type(exc).__name__}",
            "provide an unencrypted PEM (PKCS#8) ed25519 or ECDSA P-256/P-384 private key",
            field="sign.key",
        ) from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        raise ConfigError(
            f"the signing key from {source} is a {type(key).__name__}",
            "use an ed25519 or ECDSA (P-256/P-384) key",
            field="sign.key",
        )
    return key


@dataclass(frozen=True)
class LoadedKey:
    signer: Any  # securesystemslib CryptoSigner
    keyid: str
    public_pem: bytes
    source: str
    created: bool


def load_or_create_key(
    app_dir: Path, config: Config, env: Mapping[str, str], *, mask: Any = None
) -> LoadedKey:
    """The signing key: from ``$DEVOPS_AGENT_SIGNING_KEY``, ``sign.key``, or generated on first use."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from securesystemslib.signer import CryptoSigner  # type: ignore[attr-defined]

    location = key_location(app_dir, config)
    created = False
    pem_env = env.get(KEY_ENV, "")
    if pem_env.strip():
        if mask is not None:
            mask(pem_env)
        key = _load_private_pem(pem_env.encode(), f"${KEY_ENV}")
        source = f"${KEY_ENV}"
    elif location.private.exists():
        mode = stat.S_IMODE(location.private.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(
                f"the signing key {location.private} is readable by others (mode {oct(mode)})",
                f"run `chmod 600 {location.private}`",
                field="sign.key",
            )
        key = _load_private_pem(location.private.read_bytes(), str(location.private))
        source = str(location.private)
    elif location.default:
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_private(location.private, pem)
        source = str(location.private)
        created = True
    else:
        raise ConfigError(
            f"the signing key {location.private} does not exist",
            "fix the path, remove `sign.key` to generate one under .devops-agent/keys/, "
            f"or pass the PEM in ${KEY_ENV}",
            field="sign.key",
        )
    public_pem = _public_pem(key)
    if source != f"${KEY_ENV}" and (
        not location.public.exists() or location.public.read_bytes() != public_pem
    ):
        location.public.write_bytes(public_pem)
    signer = CryptoSigner(key)
    return LoadedKey(signer, signer.public_key.keyid, public_pem, source, created)


def public_key_from_pem(pem: bytes, source: str) -> Any:
    """A securesystemslib SSlibKey from a PEM public key."""
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    try:
        return SSlibKey.from_crypto(load_pem_public_key(pem))
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"cannot load the public key {source}: {exc}",
            "give a PEM (SubjectPublicKeyInfo) ed25519 or ECDSA public key",
            field="sign.public_keys",
        ) from None


def trusted_keys(app_dir: Path, config: Config) -> list[tuple[str, Any]]:
    """(source, key) pairs verify accepts: ``sign.public_keys``, else the local key's public half."""
    configured = [str(p) for p in config.section("sign").get("public_keys") or ()]
    paths = [app_dir / p if not Path(p).is_absolute() else Path(p) for p in configured]
    if not paths:
        paths = [key_location(app_dir, config).public]
    out = []
    for path in paths:
        if path.is_file():
            out.append((str(path), public_key_from_pem(path.read_bytes(), str(path))))
    return out


# -- DSSE with a key ------------------------------------------------------------------------------


def canonical_payload(statement: Mapping[str, Any]) -> bytes:
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()


def sign_statement(statement: Mapping[str, Any], key: LoadedKey) -> dict[str, Any]:
    """A DSSE envelope (JSON dict) over the statement, signed with the key."""
    from securesystemslib.dsse import Envelope

    envelope = Envelope(payload=canonical_payload(statement), payload_type=PAYLOAD_TYPE, signatures={})
    envelope.sign(key.signer)
    data: dict[str, Any] = envelope.to_dict()
    return data


@dataclass(frozen=True)
class Verified:
    statement: Mapping[str, Any]
    signer: str  # keyid, or the certificate identity for sigstore
    method: str  # key | sigstore


def verify_envelope(envelope: Mapping[str, Any], keys: Sequence[tuple[str, Any]], *, what: str) -> Verified:
    """Check the DSSE signature with the trusted keys; return the statement. GateFailed otherwise."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    if not keys:
        raise GateFailed(
            f"signature: no trusted public key to verify the {what} with",
            "run `devops-agent sign` to create the local key, or list keys in sign.public_keys",
        )
    try:
        env = Envelope.from_dict(copy.deepcopy(dict(envelope)))  # from_dict consumes nested dicts
    except (KeyError, TypeError, ValueError) as exc:
        raise GateFailed(
            f"signature: the {what} is not a DSSE envelope ({exc})", "re-run `devops-agent sign`"
        ) from None
    if env.payload_type != PAYLOAD_TYPE:
        raise GateFailed(
            f"signature: the {what} has payloadType {env.payload_type!r}, expected {PAYLOAD_TYPE!r}",
            "re-run `devops-agent sign`",
        )
    if not env.signatures:
        raise GateFailed(f"signature: the {what} carries no signature", "re-run `devops-agent sign`")
    try:
        accepted = env.verify([k for _, k in keys], 1)
    except VerificationError:
        ids = ", ".join(sorted(env.signatures))
        raise GateFailed(
            f"signature: the {what} is not validly signed by a trusted key (signature key ids: {ids})",
            "the evidence was altered or signed by another key; rebuild and sign it with the trusted key",
        ) from None
    try:
        statement = json.loads(env.payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GateFailed(f"signature: the {what} payload is not JSON", "re-run `devops-agent sign`") from None
    if not isinstance(statement, dict):
        raise GateFailed(f"signature: the {what} payload is not a JSON object", "re-run `devops-agent sign`")
    return Verified(statement, next(iter(accepted)), "key")


# -- Sigstore (keyless, GitHub Actions) -----------------------------------------------------------


def sigstore_sign(statement: Mapping[str, Any], *, staging: bool = False) -> str:
    """Keyless DSSE signing with the workflow's ambient OIDC identity; returns the bundle JSON.

    Needs ``id-token: write`` and network access to Fulcio/Rekor: it runs only in GitHub Actions.
    """
    from sigstore import dsse
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken, detect_credential
    from sigstore.sign import SigningContext

    token = detect_credential()
    if not token:
        raise StageFailed(
            "sigstore signing: no ambient OIDC credential",
            "grant the job `permissions: id-token: write`, or set sign.method: key",
        )
    trust = ClientTrustConfig.staging() if staging else ClientTrustConfig.production()
    ctx = SigningContext.from_trust_config(trust)
    stmt = dsse.Statement(canonical_payload(statement))
    with ctx.signer(IdentityToken(token)) as signer:
        bundle = signer.sign_dsse(stmt)
    text: str = bundle.to_json()
    return text


@dataclass(frozen=True)
class SigstoreIdentity:
    """What a keyless signature must be bound to: the OIDC issuer and the signing workflow."""

    issuer: str
    identity: str  # certificate SAN, e.g. https://github.com/org/repo/.github/workflows/x.yml@refs/heads/main


def sigstore_identity_for(env: Mapping[str, str]) -> SigstoreIdentity:
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    from devops_agent.supplychain.identity import signer_workflow

    workflow_ref = signer_workflow(env)
    if not workflow_ref:
        raise GateFailed(
            "signature: cannot tell which workflow identity the Sigstore signature must carry",
            "run in GitHub Actions, or pass the action input `signer-workflow` "
            "(owner/repo/.github/workflows/x.yml@ref)",
        )
    return SigstoreIdentity(GITHUB_OIDC_ISSUER, f"{server}/{workflow_ref}")


def sigstore_verify(bundle_json: str, identity: SigstoreIdentity, *, offline: bool = True) -> Verified:
    """Verify a Sigstore bundle holding a DSSE in-toto statement against Sigstore's public-good root."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify import Verifier, policy

    try:
        bundle = Bundle.from_json(bundle_json)
    except (SigstoreError, ValueError) as exc:
        raise GateFailed(f"signature: not a Sigstore bundle ({exc})", "re-run the sign job") from None
    verifier = Verifier.production(offline=offline)
    try:
        payload_type, payload = verifier.verify_dsse(
            bundle, policy.Identity(identity=identity.identity, issuer=identity.issuer)
        )
    except SigstoreError as exc:
        raise GateFailed(
            f"signature: Sigstore verification failed: {exc}",
            f"the bundle must be signed by {identity.identity} (issuer {identity.issuer})",
        ) from None
    if payload_type != PAYLOAD_TYPE:
        raise GateFailed(f"signature: Sigstore payloadType {payload_type!r}", "re-run the sign job")
    return Verified(json.loads(payload), identity.identity, "sigstore")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
