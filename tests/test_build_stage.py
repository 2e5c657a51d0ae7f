"""The build stage: commands, digests (checked against hashlib), subjects, outputs, version, image."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from devops_agent.cli import main
from devops_agent.core.state import StateStore
from devops_agent.core.versioning import GitState, derive_version, latest_semver_tag, read_git_state
from tests.test_core_gha import parse_github_output


def make_app(tmp_path: Path, build: dict[str, object], name: str = "demo") -> Path:
    app = tmp_path / name
    (app / ".github").mkdir(parents=True)
    config = {"version": 1, "app": {"name": name}, "build": build}
    (app / ".github" / "devops-agent.yml").write_text(yaml.safe_dump(config))
    return app


def actions_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    output, summary = tmp_path / "gh_output", tmp_path / "gh_summary"
    output.touch()
    summary.touch()
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return output, summary


def test_digests_match_hashlib_and_outputs_are_slsa_subjects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(
        tmp_path,
        {
            "commands": [
                "mkdir -p dist && printf 'alpha' > dist/a.bin && head -c 3000000 /dev/urandom > dist/big.bin"
            ],
            "artifacts": ["dist/*.bin"],
            "version": "v1.4.0",
        },
    )
    output, summary = actions_env(tmp_path, monkeypatch)
    assert main(["build", "--app", str(app)]) == 0
    expected = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (app / "dist").iterdir()}
    outputs = parse_github_output(output.read_text())
    subjects = json.loads(outputs["subjects"])
    assert subjects == [{"name": n, "digest": {"sha256": expected[n]}} for n in sorted(expected)]
    lines = base64.b64decode(outputs["digests"]).decode()
    assert lines == "".join(f"{expected[n]}  {n}\n" for n in sorted(expected))
    assert outputs["version"] == "1.4.0"
    text = summary.read_text()
    assert "Build of demo 1.4.0" in text
    for digest in expected.values():
        assert f"`{digest}`" in text
    manifest = json.loads((app / ".devops-agent" / "build-manifest.json").read_text())
    assert manifest["subjects"] == subjects
    with StateStore.for_app(app) as store:
        recorded = store.artifacts(manifest["run_id"])
        assert {a.name: a.sha256 for a in recorded} == expected


def test_sample_app_builds_tests_and_prints_digests(
    sample_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--app", str(sample_app)]) == 0
    out = capsys.readouterr().out
    pyz = sample_app / "dist" / "sample-app.pyz"
    digest = hashlib.sha256(pyz.read_bytes()).hexdigest()
    assert f"sha256:{digest}  sample-app.pyz" in out
    assert "Ran 6 tests" in out


def test_sample_app_build_is_reproducible(sample_app: Path, tmp_path: Path) -> None:
    assert main(["build", "--app", str(sample_app), "--skip-tests", "--out", str(tmp_path / "o1")]) == 0
    first = (tmp_path / "o1" / "sample-app.pyz").read_bytes()
    os.utime(sample_app / "src" / "sample_app" / "server.py", (1, 1))
    assert main(["build", "--app", str(sample_app), "--skip-tests", "--out", str(tmp_path / "o2")]) == 0
    assert (tmp_path / "o2" / "sample-app.pyz").read_bytes() == first
    assert (tmp_path / "o2" / "build-manifest.json").is_file()


def test_json_output_is_the_only_thing_on_stdout(
    sample_app: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "--app", str(sample_app), "--skip-tests", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["artifacts"][0]["name"] == "sample-app.pyz"
    assert payload["steps"] == [
        {
            "kind": "build",
            "command": "python3 package.py dist/sample-app.pyz",
            "exit_code": 0,
            "seconds": payload["steps"][0]["seconds"],
        }
    ]


def test_failing_test_command_exits_1_with_output_excerpt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(
        tmp_path,
        {
            "commands": ["mkdir -p dist; echo x > dist/x"],
            "test_commands": ["echo 'AssertionError: 2 != 3'; exit 3"],
            "artifacts": ["dist/x"],
        },
    )
    assert main(["build", "--app", str(app)]) == 1
    err = capsys.readouterr().err
    assert "test command failed with exit code 3" in err
    assert "AssertionError: 2 != 3" in err
    with StateStore.for_app(app) as store:
        assert store.runs()[0].status == "failure"


def test_pipefail_is_on(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"commands": ["false | cat"], "artifacts": ["x"]})
    assert main(["build", "--app", str(app)]) == 1


def test_glob_without_match_fails_with_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(tmp_path, {"commands": ["true"], "artifacts": ["dist/*.whl"]})
    assert main(["build", "--app", str(app)]) == 1
    err = capsys.readouterr().err
    assert "'dist/*.whl' matched no file" in err
    assert "fix:" in err


def test_glob_leaving_app_dir_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(tmp_path, {"commands": ["touch ran"], "artifacts": ["../secrets/*"]})
    assert main(["build", "--app", str(app)]) == 2
    assert "leaves the app directory" in capsys.readouterr().err
    assert not (app / "ran").exists(), "bad input is rejected before any command runs"


def test_duplicate_artifact_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(
        tmp_path, {"commands": ["mkdir -p a b; echo 1 > a/x; echo 2 > b/x"], "artifacts": ["a/x", "b/x"]}
    )
    assert main(["build", "--app", str(app)]) == 1
    assert "share the name 'x'" in capsys.readouterr().err


def test_missing_app_dir_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--app", str(tmp_path / "nope")]) == 2
    assert "--app" in capsys.readouterr().err


def test_build_env_and_version_reach_commands(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        {
            "commands": ['mkdir -p dist; echo "$GREETING $DEVOPS_AGENT_VERSION" > dist/v'],
            "artifacts": ["dist/v"],
            "env": {"GREETING": "hi"},
            "version": "2.0.0-rc.1",
        },
    )
    assert main(["build", "--app", str(app)]) == 0
    assert (app / "dist" / "v").read_text() == "hi 2.0.0-rc.1\n"


# -- image ------------------------------------------------------------------------------------


def test_image_requested_without_buildah_warns_and_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(
        tmp_path,
        {"commands": ["mkdir -p dist; echo 1 > dist/x"], "artifacts": ["dist/x"], "image": {"enabled": True}},
    )
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    if (Path("/usr/bin/buildah")).exists():
        pytest.skip("buildah is installed system-wide here; the missing-buildah path cannot be shown")
    assert main(["build", "--app", str(app)]) == 0
    out = capsys.readouterr().out
    assert "buildah is not installed" in out
    assert "build.image.enabled: false" in out


def test_image_required_without_buildah_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(
        tmp_path,
        {
            "commands": ["mkdir -p dist; echo 1 > dist/x"],
            "artifacts": ["dist/x"],
            "image": {"enabled": True, "required": True},
        },
    )
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    if (Path("/usr/bin/buildah")).exists():
        pytest.skip("buildah is installed system-wide here; the missing-buildah path cannot be shown")
    assert main(["build", "--app", str(app)]) == 1
    assert "buildah is not installed" in capsys.readouterr().err


def test_image_build_drives_buildah(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in buildah records its arguments (no container runtime here): checks the wiring."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "buildah.log"
    fake = bindir / "buildah"
    fake.write_text(f"""#!/usr/bin/env bash
echo "$@" >> {log}
if [ "$1" = push ]; then
  echo -n sha256:{"ab" * 32} > "$3"
  archive="${{5#oci-archive:}}"; echo image > "$archive"
fi
""")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    app = make_app(
        tmp_path,
        {
            "commands": ["mkdir -p dist; echo 1 > dist/x"],
            "artifacts": ["dist/x"],
            "version": "1.0.0+build.5",
            "image": {"enabled": True, "name": "ghcr.io/o/demo"},
        },
    )
    output, _ = actions_env(tmp_path, monkeypatch)
    assert main(["build", "--app", str(app)]) == 0
    calls = log.read_text().splitlines()
    assert calls[0] == "build --isolation chroot -f Containerfile -t ghcr.io/o/demo:1.0.0_build.5 ."
    assert calls[1].startswith("push --digestfile ")
    assert calls[1].endswith(
        "ghcr.io/o/demo:1.0.0_build.5 oci-archive:" + str(app / "dist" / "demo-image.oci.tar")
    )
    assert parse_github_output(output.read_text())["image-digest"] == "sha256:" + "ab" * 32


# -- version ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "git", "expected"),
    [
        ("v2.1.0", None, "2.1.0"),
        ("1.0.0rc1", None, "1.0.0rc1"),
        (None, None, "0.0.0-dev"),
        (None, GitState((), 4, "abc1234"), "0.0.0-dev.4+gabc1234"),
        (None, GitState(("v1.2.3", "v1.10.0", "v1.9.9", "junk", "release-7"), 0, "abc1234"), "1.10.0"),
        (None, GitState(("v1.2.3",), 3, "abc1234"), "1.2.4-dev.3+gabc1234"),
        (None, GitState(("2.0.0-rc.1",), 2, "abc1234"), "2.0.0-rc.1.dev.2+gabc1234"),
    ],
)
def test_derive_version(configured: str | None, git: GitState | None, expected: str) -> None:
    assert derive_version(configured, git) == expected


def test_latest_semver_tag_orders_semantically() -> None:
    assert latest_semver_tag(["v1.9.0", "v1.10.0", "v1.10.0-rc.1", "nightly"]) == "v1.10.0"
    assert latest_semver_tag(["nightly"]) is None


def test_bad_configured_version_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(tmp_path, {"commands": ["true"], "artifacts": ["x"], "version": "one.two"})
    assert main(["build", "--app", str(app)]) == 2
    assert "build.version" in capsys.readouterr().err


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
        },
    )


def test_version_from_real_git_tags(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "f").write_text("1")
    git(repo, "add", "f")
    git(repo, "commit", "-qm", "one")
    git(repo, "tag", "v0.9.0")
    git(repo, "tag", "v1.0.0")
    state = read_git_state(repo)
    assert state is not None
    assert derive_version(None, state) == "1.0.0"
    (repo / "f").write_text("2")
    git(repo, "commit", "-qam", "two")
    state = read_git_state(repo)
    assert state is not None
    assert derive_version(None, state).startswith("1.0.1-dev.1+g")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert read_git_state(plain) is None
