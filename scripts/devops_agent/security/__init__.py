"""Security scanning: scanner runners, SARIF normalisation and the policy gate.

- :mod:`.severity` — one scale (critical/high/medium/low) from CVSS, labels, levels...
- :mod:`.sarif` — SARIF 2.1.0 ingestion (tolerant, with notes), fingerprints, merged output.
- :mod:`.policy` — the gate: thresholds, baseline, suppressions (pure decisions).
- :mod:`.scanners` — bandit, semgrep, pip-audit (fail-closed), checkov, external SARIF.
- :mod:`.report` — job summary, annotations, JSON.
"""
