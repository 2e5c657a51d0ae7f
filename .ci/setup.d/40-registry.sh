#!/usr/bin/env bash
# A local OCI registry (docker-registry, the CNCF distribution server) and skopeo, for the cleanup
# janitor's real-image tests (tests/test_cleanup_registry.py): the tests start the registry on
# 127.0.0.1 with a temporary config and push multi-arch OCI layouts with skopeo.
# Idempotent and fast on re-run. The tests find the tools on PATH (or DEVOPS_AGENT_REGISTRY_BIN /
# DEVOPS_AGENT_SKOPEO_BIN).
set -euo pipefail
if command -v skopeo >/dev/null 2>&1 && { command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ]; }; then
  exit 0
fi
packages=(docker-registry skopeo)
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
else
  echo "warning: docker-registry and skopeo cannot be installed here (apt-get missing);" \
    "install them with your package manager; the real-registry cleanup tests will be skipped" >&2
  exit 0
fi
# The Debian package may start a system registry on :5000; the tests use their own instance.
skopeo --version
