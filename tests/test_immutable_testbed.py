"""Immutable releases on the real bed: shipped once, never overwritten, never re-uploaded
by a rollback, pruned to `keep_releases`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import ROOT, Deploy, demo_playbook, write_playbook

pytestmark = pytest.mark.testbed


def _app_copy(tmp_path: Path) -> Path:
    src = tmp_path / "build"
    shutil.copytree(ROOT / "examples" / "app", src, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def _playbook(deploy: Deploy, tmp_path: Path, src: Path, **extra: object) -> None:
    doc = demo_playbook(deploy.bed, deploy.root, tmp_path / "journal")
    doc["ship"][0]["upload"]["src"] = str(src)
    doc.update(extra)
    write_playbook(deploy.path, doc)


def test_a_cold_rollback_starts_the_shipped_files_and_never_uploads(
    deploy: Deploy, tmp_path: Path
) -> None:
    src = _app_copy(tmp_path)
    _playbook(deploy, tmp_path, src)
    assert deploy.release("v1").returncode == 0
    shipped = {p.name: p.read_bytes() for p in (deploy.root / "releases" / "v1").iterdir()}
    manifest = json.loads((deploy.root / "releases" / "v1" / ".deployer-manifest").read_text())
    assert manifest["version"] == "v1" and len(manifest["digest"]) == 64
    (src / "NEW_MIGRATION.py").write_text("# v2's code, must never reach releases/v1\n")
    (src / "app.py").write_text((src / "app.py").read_text() + "\n# v2\n")
    assert deploy.release("v2").returncode == 0
    deadline = time.monotonic() + 10  # keep_warm 500ms: blue (v1) is stopped, a cold rollback
    while (deploy.root / "blue.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc = deploy.run("-o", "json", "rollback", "-p", str(deploy.path))
    assert proc.returncode == 0, proc.stderr
    names = [s["name"] for s in json.loads(proc.stdout)["steps"]]
    assert "check:upload app" in names and not any(n.startswith("ship:upload") for n in names)
    after = {p.name: p.read_bytes() for p in (deploy.root / "releases" / "v1").iterdir()}
    assert after == shipped  # byte-identical, nothing added
    assert deploy.live()["version"] == "v1"


def test_a_version_is_never_overwritten_by_another_build(deploy: Deploy, tmp_path: Path) -> None:
    src = _app_copy(tmp_path)
    _playbook(deploy, tmp_path, src)
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    (src / "app.py").write_text((src / "app.py").read_text() + "\n# changed\n")
    proc = deploy.release("v1")
    assert proc.returncode == 3, proc.stderr
    assert "already holds another build" in proc.stderr
    assert b"# changed" not in (deploy.root / "releases" / "v1" / "app.py").read_bytes()
    assert deploy.live()["version"] == "v2"


def test_a_rollback_to_a_version_gone_from_the_host_changes_nothing(
    deploy: Deploy, tmp_path: Path
) -> None:
    src = _app_copy(tmp_path)
    _playbook(deploy, tmp_path, src)
    assert deploy.release("v1").returncode == 0
    assert deploy.release("v2").returncode == 0
    deadline = time.monotonic() + 10
    while (deploy.root / "blue.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.rmtree(deploy.root / "releases" / "v1")
    proc = deploy.run("rollback", "-p", str(deploy.path))
    assert proc.returncode == 3 and "no longer on this host" in proc.stderr, proc.stderr
    assert deploy.live()["version"] == "v2"


def test_old_releases_are_pruned_but_never_the_live_or_warm_one(
    deploy: Deploy, tmp_path: Path
) -> None:
    src = _app_copy(tmp_path)
    _playbook(deploy, tmp_path, src, keep_releases=2)
    for v in ("v1", "v2", "v3", "v4"):
        assert deploy.release(v).returncode == 0
    left = sorted(p.name for p in (deploy.root / "releases").iterdir())
    assert left == ["v3", "v4"]
