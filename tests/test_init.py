"""`deployer init`: what it writes validates, is never written over an existing file, and
takes a newcomer's app to a first release on the test bed with only the blanks filled in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


def deployer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    ("target", "playbook", "others"),
    [
        (
            "nginx",
            "playbooks/production.yml",
            ["deploy/nginx.conf", "deploy/appctl.sh", ".github/workflows/deploy.yml"],
        ),
        ("vercel", "playbooks/vercel.yml", ["vercel.json", ".github/workflows/deploy.yml"]),
    ],
)
def test_init_writes_a_playbook_that_validates(
    tmp_path: Path, target: str, playbook: str, others: list[str]
) -> None:
    out = deployer("-o", "json", "init", "--target", target, "--app", "shop", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc["written"]) >= {playbook, *others} and doc["next"]
    checked = deployer("validate", "-p", playbook, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid (shop" in checked.stdout
    text = (tmp_path / playbook).read_text()
    assert "__APP__" not in text and "REQUIRED" in text
    if target == "nginx":
        snippet = (tmp_path / "deploy/nginx.conf").read_text()
        for needed in (
            "include /etc/nginx/deployer/shop-upstream.conf",
            "proxy_http_version 1.1",
            'Connection ""',
            "worker_shutdown_timeout",
            "log_format deployer",
        ):
            assert needed in snippet
        assert os.access(tmp_path / "deploy/appctl.sh", os.X_OK)
    else:
        vercel = json.loads((tmp_path / "vercel.json").read_text())
        assert vercel == json.loads((ROOT / "examples/vercel.json").read_text())


def test_init_never_writes_over_a_file(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    mine = tmp_path / "deploy" / "nginx.conf"
    mine.write_text("# my own\n")
    out = deployer("init", cwd=tmp_path)
    assert out.returncode == 2 and "deploy/nginx.conf" in out.stderr
    assert "Traceback" not in out.stderr
    assert mine.read_text() == "# my own\n"
    assert not (tmp_path / "playbooks").exists()  # nothing at all was written
    bad = deployer("init", "--app", "Not An App;rm", cwd=tmp_path)
    assert bad.returncode == 2 and "--app" in bad.stderr


def test_the_examples_are_what_init_writes() -> None:
    """examples/ links to the templates, so the README's examples never drift from them."""
    for link in ("examples/vercel.json", "examples/github-actions/deploy-nginx.yml"):
        assert (ROOT / link).is_symlink() and (ROOT / link).resolve().is_file()


def test_the_service_script_template_starts_stops_and_reports(tmp_path: Path) -> None:
    deployer("init", "--app", "shop", cwd=tmp_path)
    release = tmp_path / "releases" / "v1"
    (release / "deploy").mkdir(parents=True)
    ctl = release / "deploy" / "appctl.sh"
    ctl.write_text((tmp_path / "deploy/appctl.sh").read_text())
    ctl.chmod(0o755)
    (release / "start.sh").write_text("#!/bin/sh\nexec sleep 30\n")
    (release / "start.sh").chmod(0o755)
    root = str(tmp_path)

    def run(*args: str) -> int:
        return subprocess.run([str(ctl), *args], check=False, timeout=30).returncode

    assert run("stop", root, "blue") == 0  # not running: still a success
    assert run("status", root, "blue") != 0
    assert run("start", root, "blue", "8001") == 0
    assert run("status", root, "blue") == 0
    assert run("start", root, "blue", "8001") != 0  # already running: refused
    assert run("stop", root, "blue") == 0
    assert run("status", root, "blue") != 0


APP = """\
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
VERSION = os.path.basename(os.path.realpath(os.getcwd()))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"version": VERSION}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


@pytest.mark.testbed
def test_a_newcomer_gets_from_init_to_a_first_release(bed, tmp_path: Path) -> None:
    """init, fill in the blanks the comments name (hosts, router, ship), release v1."""
    for port in (bed.ports.blue, bed.ports.green):
        subprocess.run(["pkill", "-f", "--", f"app.py --port {port} "], check=False)
    bed.reset_router()
    repo = tmp_path / "shop"
    repo.mkdir()
    started = time.monotonic()
    assert deployer("init", "--app", "shop", cwd=repo).returncode == 0
    build = repo / "build"
    (build / "deploy").mkdir(parents=True)
    (build / "app.py").write_text(APP)
    (build / "start.sh").write_text("#!/bin/sh\nexec python3 app.py\n")
    (build / "start.sh").chmod(0o755)
    (build / "deploy" / "appctl.sh").write_text((repo / "deploy/appctl.sh").read_text())
    (build / "deploy" / "appctl.sh").chmod(0o755)
    path = repo / "playbooks" / "production.yml"
    doc = yaml.safe_load(path.read_text())
    bed_doc = bed.playbook(tmp_path / "srv", tmp_path / "journal")
    doc["hosts"][0].update(bed_doc["hosts"][0], name="web1")
    doc["colors"] = bed_doc["colors"]
    doc["vars"]["root"] = str(tmp_path / "srv")
    doc["router"].update(bed_doc["router"], upstream_name="demo")
    doc["gates"]["pre_switch"].update(interval="100ms", budget="10s")
    doc["gates"]["post_switch"].update(window="1s", rate=10)
    doc["rollback"]["keep_warm"] = "2s"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    try:
        out = deployer("-o", "json", "release", "-p", str(path), "--version", "v1", cwd=repo)
        assert out.returncode == 0, out.stdout + out.stderr
        assert json.loads(out.stdout)["outcome"] == "succeeded"
        seen = httpx.get(f"http://127.0.0.1:{bed.ports.http}/health", timeout=5).json()
        assert seen == {"version": "v1"}
        print(f"init to first release: {time.monotonic() - started:.1f} s")
    finally:
        srv = tmp_path / "srv"
        for color in ("blue", "green"):
            timer = srv / "state" / f"{color}.stop-timer"
            if timer.exists():
                subprocess.run(["sh", "-c", f"kill -- -$(cat {timer}) 2>/dev/null"], check=False)
            ctl = srv / color / "deploy" / "appctl.sh"
            if ctl.exists():
                subprocess.run([str(ctl), "stop", str(srv), color], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a script as another user")
@pytest.mark.parametrize("script", ["demo.sh", "test.sh"])
def test_the_scripts_escalate_only_with_sudo_and_say_so(
    request: pytest.FixtureRequest, script: str
) -> None:
    """Run as a user: with sudo they re-run themselves through it (and say so); without,
    one line says why they stop. Nothing else runs before that."""
    tmp_path = Path(tempfile.mkdtemp(prefix="deployer-sudo-"))  # traversable by nobody
    request.addfinalizer(lambda: shutil.rmtree(tmp_path, ignore_errors=True))
    tmp_path.chmod(0o755)
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "scripts" / script).write_text((ROOT / "scripts" / script).read_text())
    (repo / "scripts" / "as_root.sh").write_text((ROOT / "scripts" / "as_root.sh").read_text())
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sudo").write_text('#!/bin/sh\necho "sudo $*" > "$(dirname "$0")/called"\n')
    (fake / "sudo").chmod(0o755)
    for p in (tmp_path, repo, repo / "scripts", fake):
        p.chmod(0o777)

    def as_nobody(path: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "nobody", "--", "env", f"PATH={path}", "bash",
             f"scripts/{script}"],
            cwd=repo, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    without = as_nobody("/usr/bin:/bin")
    assert without.returncode == 1 and "root is needed" in without.stderr
    assert "there is no sudo" in without.stderr
    with_sudo = as_nobody(f"{fake}:/usr/bin:/bin")
    assert with_sudo.returncode == 0 and "re-running with sudo" in with_sudo.stderr
    assert f"bash scripts/{script}" in (fake / "called").read_text()


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_the_nginx_snippet_and_a_fleet_upstream_pass_nginx_t(tmp_path: Path) -> None:
    """The snippet `init` writes, with the upstream deployer writes for three hosts (passive
    health: a shared zone, max_fails/fail_timeout), is a configuration nginx accepts."""
    from deployer.commands import nginx

    out = deployer("init", "--target", "nginx", "--app", "shop", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    d = tmp_path / "nginx"
    (d / "logs").mkdir(parents=True)
    servers = ["10.0.0.1:8001", "10.0.0.2:8001", "10.0.0.3:8001"]
    upstream = nginx.upstream_conf("shop", "blue", "v1", servers, 16, (1, 10.0))
    assert "zone deployer_shop 64k;" in upstream and "max_fails=1 fail_timeout=10s;" in upstream
    (d / "upstream.conf").write_text(upstream)
    snippet = (tmp_path / "deploy/nginx.conf").read_text()
    snippet = snippet.replace("/etc/nginx/deployer/shop-upstream.conf", str(d / "upstream.conf"))
    snippet = snippet.replace("/var/log/nginx/", f"{d}/logs/").replace(
        "listen 80;", "listen 127.0.0.1:1;"
    )
    temp = "".join(
        f"{k}_temp_path {d}/tmp; " for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (d / "nginx.conf").write_text(
        f"pid {d}/nginx.pid; error_log {d}/logs/error.log;\n"
        f"events {{}}\nhttp {{ {temp}\n{snippet}\n}}\n"
    )
    conf, log = str(d / "nginx.conf"), f"{d}/logs/error.log"
    test = subprocess.run(
        ["nginx", "-t", "-q", "-p", str(d), "-e", log, "-c", conf],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert test.returncode == 0, test.stderr
    one = nginx.upstream_conf("shop", "blue", "v1", servers[:1], 16, (1, 10.0))
    assert "zone" not in one and "max_fails=0;" in one  # one server: nothing to pass over


def test_the_vercel_workflow_lints_only_what_exists_and_every_placeholder_is_listed(
    tmp_path: Path,
) -> None:
    """An app without Alembic migrations still gets its release job: the lint step runs
    only when migrations/versions exists (a bare `deployer lint migrations/versions` exits
    2 there, and the release job `needs` it)."""
    out = deployer("-o", "json", "init", "--target", "vercel", "--app", "shop", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    steps = "\n".join(json.loads(out.stdout)["next"])
    workflow = (tmp_path / ".github/workflows/deploy.yml").read_text()
    assert "if [ -d migrations/versions ]" in workflow
    assert "OWNER" in workflow and "OWNER" in steps  # the one placeholder, named
    assert "auto-assignment" in steps and "health-route.ts" in steps
    script = workflow.split("- name: lint the migrations (when the app has them)")[1]
    script = script.split("run: |")[1].split("- if:")[0]
    lines = "\n".join(line.strip() for line in script.splitlines())
    ran = subprocess.run(  # the step's own shell text, in an app without migrations
        ["bash", "-c", lines], cwd=tmp_path, capture_output=True, text=True, check=False,
        env={**os.environ, "GITHUB_OUTPUT": str(tmp_path / "out")},
    )  # fmt: skip
    assert ran.returncode == 0 and "nothing to lint" in ran.stdout, ran.stderr


def test_the_example_health_route_is_dynamic_and_reports_its_commit() -> None:
    route = (ROOT / "examples/vercel/health-route.ts").read_text()
    assert "export const dynamic = 'force-dynamic'" in route
    assert "VERCEL_GIT_COMMIT_SHA" in route and "SELECT 1" in route
    config = json.loads((ROOT / "examples/vercel.json").read_text())
    assert "trailingSlash" not in config and "cleanUrls" not in config
