"""devops-agent: a reusable DevSecOps pipeline for GitHub repositories.

Nothing is imported here on purpose: ``devops-agent --version`` must start fast.
"""

from devops_agent._version import __version__

__all__ = ["__version__"]
