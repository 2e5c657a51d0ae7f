"""Supply-chain evidence: SBOMs (CycloneDX, SPDX), SLSA v1 provenance, DSSE signing and verification.

Layout of the evidence for one artifact digest (see :mod:`devops_agent.supplychain.layout`)::

    <app>/.devops-agent/attestations/sha256-<hex>/
        sbom.cdx.json          CycloneDX 1.6 JSON (validated)
        sbom.spdx.json         SPDX 2.3 JSON (validated)
        provenance.dsse.json   DSSE envelope: in-toto Statement v1 + SLSA Provenance v1 (local key)
        sbom.dsse.json         DSSE envelope: in-toto Statement v1 + CycloneDX predicate (local key)
        *.sigstore.json        the same statements as Sigstore bundles (keyless, in GitHub Actions)
"""
