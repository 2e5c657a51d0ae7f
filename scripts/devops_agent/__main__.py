from devops_agent.cli import entrypoint

entrypoint()
