"""Promotion to production: the pure decisions behind ``devops-agent promote``.

- :mod:`.freeze` — freeze windows (date ranges or cron + duration, time-zone aware) and overrides;
- :mod:`.staging` — :func:`~.staging.staging_passed`, the contract of "passed staging validation";
- :mod:`.change` — the change record (P-ITIL-CHANGE) written to the summary and the history;
- :mod:`.envfile` — environments-as-code: the YAML model and the diff against GitHub;
- :mod:`.tokens` — which tokens can administer environments or review deployments;
- :mod:`.approvals` — local approvals of ``devops-agent run`` (``approve --local``).

Everything here is pure or does small, explicit I/O; the stages in ``devops_agent.stages``
(``promote``, ``environments``, ``review``) are the thin command layers on top.
"""
