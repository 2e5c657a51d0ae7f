"""Registry cleanup: requests and runs to reach the end state, ours vs the peer, on the fake GitHub.

The peer is actions/delete-package-versions v5 (see GITHUB-NOTES "The peer to beat"). Its action
bundle cannot be fetched here (no network beyond package registries), so the peer column runs a
*model* of its documented REST behaviour against the same fake server over HTTP: per run it lists
``GET …/versions?per_page=100&page=N`` until a short page (one extra empty page when the count is a
multiple of 100), then deletes the oldest excess versions, at most 100 per run, all at once (100
threads). The model reproduces the measured numbers (500 → 5 runs / 510 requests, 2,000 → 20 runs
/ 2,220 requests); both are printed.

Ours: one ``devops-agent cleanup`` plan + act (GitHubPlatform + RetryPolicy, writes paced at 1 s on
an injected clock — nothing really sleeps), manifests resolved on the fake registry (counted
separately: another host with its own limits).

Cases:
1. N tagged single-arch images, keep the newest 10 (N = 500 and 2,000): API requests, runs, bound
   ``requests <= listing pages + deletions + 2``, simulated pacing time.
2. 100 multi-arch images (2 platforms + 2 BuildKit attestations each) + 100 cosign signatures,
   keep the newest 10: "delete untagged" (the peer's ``delete-only-untagged-versions``) vs ours —
   how many kept tags end up broken (an index whose entries were deleted).

Usage: python benchmarks/bench_cleanup.py [--sizes 500,2000]
"""

from __future__ import annotations

import argparse
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

PEER_MEASURED = {500: (5, 510, 495), 2000: (20, 2220, 2010)}  # runs, requests, minimum (GITHUB-NOTES)
KEEP = 10


def peer_run(
    api: str, token: str, owner: str, package: str, *, keep: int, only_untagged: bool = False
) -> tuple[int, int]:
    """One run of the peer model. Returns (requests, deletions)."""
    import requests

    session = requests.Session()
    session.headers["authorization"] = f"token {token}"
    base = f"{api}/orgs/{owner}/packages/container/{package}/versions"
    versions: list[dict[str, Any]] = []
    sent = 0
    page = 1
    while True:
        response = session.get(base, params={"per_page": 100, "page": page}, timeout=30)
        sent += 1
        batch = response.json()
        versions.extend(batch)
        if len(batch) < 100:
            break
        page += 1
    versions.sort(key=lambda v: v["created_at"])  # oldest first
    if only_untagged:
        doomed = [v for v in versions if not v["metadata"]["container"]["tags"]]
    else:
        doomed = versions[: max(len(versions) - keep, 0)]
    doomed = doomed[:100]
    lock = threading.Lock()
    count = [0]

    def delete(version: dict[str, Any]) -> None:
        session.delete(f"{base}/{version['id']}", timeout=30)
        with lock:
            count[0] += 1

    with ThreadPoolExecutor(max_workers=100) as pool:  # "all at once"
        list(pool.map(delete, doomed))
    session.close()
    return sent + count[0], len(doomed)


def seed_single(fake: Any, registry: Any, n: int, now: datetime) -> list[str]:
    from tests.fakes.registry import ImagePackage

    package = ImagePackage(registry, "octo-org/app")
    digests = [package.image([f"build-{i}"], now - timedelta(hours=n - i)) for i in range(n)]
    package.publish(
        lambda d, tags, at: fake.add_package_version("org", "octo-org", "container", "app", d, tags, at)
    )
    return digests


def ours(fake: Any, registry: Any, now: datetime, clock: Any) -> dict[str, Any]:
    from devops_agent.cleanup.collect import RegistryManifests
    from devops_agent.cleanup.policy import policy_from_data
    from devops_agent.core.platform import RepoRef
    from devops_agent.platform.github import GitHubPlatform
    from devops_agent.platform.retry import RetryPolicy
    from devops_agent.stages.cleanup import Janitor

    policy = policy_from_data(
        {
            "version": 1,
            "packages": [
                {
                    "name": "app",
                    "owner": "octo-org",
                    "owner_kind": "org",
                    "keep_newest": KEEP,
                    "orphan_min_age": "0s",
                    "registry": registry.url,
                    "image": "octo-org/app",
                }
            ],
        }
    )
    retry = RetryPolicy(write_interval=policy.deletions.write_interval, clock=clock.time, sleep=clock.sleep)
    fake.log.clear()
    with GitHubPlatform(
        RepoRef(fake.owner, fake.repo), token=fake.token, api_url=fake.api_url, policy=retry
    ) as platform:
        manifests = RegistryManifests()
        janitor = Janitor(policy, platform, None, manifests, None, {})
        plan = janitor.plan(("packages",), now)
        outcomes = janitor.act(plan)
        requests = platform.stats().requests
    pages = sum(1 for r in fake.log if r.method == "GET" and r.path.endswith("/versions"))
    return {
        "requests": requests,
        "pages": pages,
        "deletions": sum(1 for o in outcomes if o.status in ("deleted", "already-gone")),
        "registry": manifests.requests,
        "paced_seconds": sum(clock.slept),
        "remaining": sum(len(v) for v in fake.packages.values()),
    }


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 0.0)


def case_keep_n(n: int) -> bool:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.registry import FakeRegistry

    now = datetime.now(timezone.utc)
    # peer model
    with FakeGitHub(validate=False) as fake, FakeRegistry() as registry:
        seed_single(fake, registry, n, now)
        runs = requests = 0
        while True:
            sent, deleted = peer_run(fake.api_url, fake.token, "octo-org", "app", keep=KEEP)
            requests += sent
            if deleted == 0:
                requests -= sent  # the run that finds nothing to do is not needed to reach the end state
                break
            runs += 1
        peer_remaining = sum(len(v) for v in fake.packages.values())
    # ours
    clock = Clock()
    with FakeGitHub(validate=False) as fake, FakeRegistry() as registry:
        seed_single(fake, registry, n, now)
        result = ours(fake, registry, now, clock)
    minimum = result["pages"] + result["deletions"]
    bound = minimum + 2
    measured = PEER_MEASURED.get(n)
    print(f"\n## {n} versions, keep the newest {KEEP}")
    print("| | runs | API requests | minimum (pages + deletions) | ratio to minimum | end state |")
    print("|---|---|---|---|---|---|")

    def row(*cells: object) -> None:
        print("| " + " | ".join(str(c) for c in cells) + " |")

    if measured:
        row(
            "peer (measured, GITHUB-NOTES)",
            measured[0],
            measured[1],
            measured[2],
            f"{measured[1] / measured[2]:.3f}",
            f"{KEEP} left",
        )
    peer_min = -(-n // 100) + n - KEEP
    row(
        "peer (model, this fake)",
        runs,
        requests,
        peer_min,
        f"{requests / peer_min:.3f}",
        f"{peer_remaining} left",
    )
    row(
        "ours",
        1,
        result["requests"],
        minimum,
        f"{result['requests'] / minimum:.3f}",
        f"{result['remaining']} left",
    )
    verdict = "OK" if result["requests"] <= bound else "EXCEEDED"
    print(
        f"\nours: {result['pages']} listing pages + {result['deletions']} deletions; "
        f"bound {bound}: {verdict}; "
        f"peer/ours requests = {requests / result['requests']:.2f}x, runs {runs} vs 1; "
        f"registry manifest GETs (another host): {result['registry']}; "
        f"writes paced 1 s apart: {result['paced_seconds']:.0f} s simulated "
        "(peer: up to 100 DELETEs in flight)"
    )
    return result["requests"] <= bound and result["remaining"] == KEEP and peer_remaining == KEEP


def case_multi_arch(images: int = 100) -> bool:
    from tests.fakes.github.server import FakeGitHub
    from tests.fakes.registry import FakeRegistry, ImagePackage

    now = datetime.now(timezone.utc)
    results = {}
    for who in ("peer: delete only untagged", "ours"):
        with FakeGitHub(validate=False) as fake, FakeRegistry() as registry:
            package = ImagePackage(registry, "octo-org/app")
            indexes = []
            for i in range(images):
                created = now - timedelta(days=images - i)
                digest, children = package.index([f"v1.{i}"], created, platforms=2, attestations=True)
                package.signature(digest, created)
                indexes.append((digest, children, i >= images - KEEP))
            package.publish(
                lambda d, tags, at: fake.add_package_version(
                    "org", "octo-org", "container", "app", d, tags, at
                )
            )
            if who == "ours":
                out = ours(fake, registry, now, Clock())
                runs, requests = 1, out["requests"]
            else:
                runs = requests = 0
                while True:
                    sent, deleted = peer_run(
                        fake.api_url, fake.token, "octo-org", "app", keep=KEEP, only_untagged=True
                    )
                    if deleted == 0:
                        break
                    runs, requests = runs + 1, requests + sent
            left = {v["name"] for vs in fake.packages.values() for v in vs}
            kept_tags = [(d, c) for d, c, keep in indexes if d in left]
            broken = sum(1 for d, c in kept_tags if not set(c) <= left)
            results[who] = (runs, requests, len(kept_tags), broken, len(left))
    print(
        f"\n## {images} multi-arch images (2 platforms + 2 attestations each) + signatures, "
        f"keep newest {KEEP}"
    )
    print("| | runs | API requests | tagged images left | broken (entries deleted) | versions left |")
    print("|---|---|---|---|---|---|")
    for who, row in results.items():
        print("| " + " | ".join([who, *map(str, row)]) + " |")
    ours_row = results["ours"]
    return ours_row[3] == 0 and ours_row[2] == KEEP


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="500,2000")
    args = parser.parse_args()
    ok = all(case_keep_n(int(n)) for n in args.sizes.split(","))
    ok = case_multi_arch() and ok
    print(f"\n{'PASS' if ok else 'FAIL'}: one run, requests within pages + deletions + 2, no broken image")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
