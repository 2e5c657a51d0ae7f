"""Failure incidents: one GitHub issue per pipeline + branch + failing stage, with its lifecycle.

- :mod:`.model` — frozen inputs (settings, the run, the failure context) and the hidden markers;
- :mod:`.plan` — pure decisions: classify the run, count consecutive failures, plan what to open,
  comment, escalate or close;
- :mod:`.render` — markdown (failure-context file, issue bodies, comments, job summary);
- :mod:`.redact` and :mod:`.logs` — secret redaction and log excerpts;
- :mod:`.collect` — gather the context (environment, jobs API, reports, state store);
- :mod:`.act` — carry a plan out on a :class:`~devops_agent.core.platform.Platform`.

The subcommands live in :mod:`devops_agent.stages.incidents`; see docs/incidents.md.
"""
