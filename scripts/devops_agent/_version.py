"""Single source of the package version (read by setuptools and ``--version``)."""

__version__ = "0.1.0"

# Our own composite actions are referenced from the reusable workflows as
# ``{ACTIONS_REPOSITORY}/actions/<stage>@{ACTIONS_REF}``; see docs/design/own-actions.md.
ACTIONS_REPOSITORY = "org/devops-agent"
ACTIONS_REF = "v1"
