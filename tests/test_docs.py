"""The documentation site (mkdocs.yml, docs/): it builds with `mkdocs build --strict` (a
broken link, a missing page or a page left out of the navigation fails), offline; the pages
generated from deployer's own sources list every playbook key and every lint rule; the
README stays a front page."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build(root: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """`mkdocs build --strict` of the site at ``root`` (never with -q: it hides the warnings
    strict mode counts, and a broken link would pass)."""
    env = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        # offline: nothing may be fetched while building (a proxy that goes nowhere)
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "",
    }
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=root, capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site")
    proc = build(ROOT, out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    yield out
    shutil.rmtree(out, ignore_errors=True)


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "docs", copy / "docs")
    (copy / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mkdocs_hooks.py", copy / "scripts")
    shutil.copy(ROOT / "mkdocs.yml", copy)
    with (copy / "docs" / "ci.md").open("a") as fh:
        fh.write("\nSee [the missing page](nowhere.md).\n")
    proc = build(copy, tmp_path / "out")
    assert proc.returncode == 1 and "nowhere.md" in proc.stderr, proc.stderr


def test_the_playbook_reference_lists_every_key(site: Path) -> None:
    from deployer.playbook.docs import reference

    page = (site / "reference" / "playbook" / "index.html").read_text()
    missing = [r["key"] for r in reference() if f"<code>{r['key']}</code>" not in page]
    assert not missing, missing


def test_the_lint_rules_page_has_every_rule_with_its_explanation(site: Path) -> None:
    from deployer.lint.rules import load_rules
    from deployer.lint.runner import META

    page = (site / "reference" / "lint-rules" / "index.html").read_text()
    for rule in load_rules().values():
        assert f'id="{rule.id}"' in page, rule.id
        first = rule.doc.splitlines()[0]
        assert first.split("`")[0][:40] in page.replace("&#39;", "'"), rule.id
    for name in META:
        assert f'id="{name}"' in page, name


def test_every_page_is_reachable_and_nothing_is_fetched(site: Path) -> None:
    pages = sorted(p.relative_to(ROOT / "docs") for p in (ROOT / "docs").rglob("*.md"))
    for page in pages:
        built = site / page.with_suffix("") / "index.html"
        if page.name == "index.md":
            built = site / page.parent / "index.html"
        assert built.is_file(), page
    html = (site / "index.html").read_text()
    assert "fonts.googleapis.com" not in html  # `font: false`: it reads offline


def test_the_readme_is_a_front_page() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 160
    for command in ("bash scripts/demo.sh", "bash scripts/test.sh"):
        assert command in readme
    for page in ("docs/troubleshooting.md", "docs/architecture.md", "docs/reference/playbook.md"):
        assert (ROOT / page).is_file() and page in readme
