"""`deployer init`: a working starting point for a target, written without questions."""

from __future__ import annotations

import re
import stat
from importlib import resources
from pathlib import Path

import click

from deployer.cli.app import Application
from deployer.errors import InputError, printable

#: target -> (template path, where it goes, executable)
FILES = {
    "nginx": [
        ("nginx/production.yml", "playbooks/production.yml", False),
        ("nginx/deploy/nginx.conf", "deploy/nginx.conf", False),
        ("nginx/deploy/appctl.sh", "deploy/appctl.sh", True),
        ("github/deploy-nginx.yml", ".github/workflows/deploy.yml", False),
        ("github/rollback-drill.yml", ".github/workflows/rollback-drill.yml", False),
    ],
    "vercel": [
        ("vercel/vercel-playbook.yml", "playbooks/vercel.yml", False),
        ("vercel/vercel.json", "vercel.json", False),
        ("github/deploy-vercel.yml", ".github/workflows/deploy.yml", False),
    ],
}
APP_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NEXT = {
    "nginx": [
        "edit playbooks/production.yml: hosts, ship (what to upload), the service commands",
        "put deploy/nginx.conf's lines in your nginx.conf; make deploy/appctl.sh start your app",
        "replace OWNER in .github/workflows/*.yml (the pip install lines) with where your "
        "copy of deployer lives",
        "deployer validate -p playbooks/production.yml",
        "deployer plan -p playbooks/production.yml --version v1",
        "deployer release -p playbooks/production.yml --version v1",
    ],
    "vercel": [
        "edit playbooks/vercel.yml: vercel.team, production_url, the gates' health path",
        "replace OWNER in .github/workflows/deploy.yml (the pip install line) with where "
        "your copy of deployer lives",
        "in the Vercel project's settings, turn off auto-assignment of custom production "
        "domains (deployer refuses a project that auto-assigns: a build would go live "
        "before its gate)",
        "add a health route that reports the commit (examples/vercel/health-route.ts: "
        "src/app/api/health/route.ts)",
        "set VERCEL_TOKEN (and VERCEL_AUTOMATION_BYPASS_SECRET) in your CI's secrets",
        "deployer validate -p playbooks/vercel.yml",
        "push: .github/workflows/deploy.yml builds, releases and keeps the evidence",
    ],
}


def register(cli: click.Group) -> None:
    cli.add_command(init)


def _default_app(directory: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")
    return name[:63] if name and APP_NAME.fullmatch(name[:63]) else "app"


@click.command()
@click.option(
    "--target",
    type=click.Choice(sorted(FILES)),
    default="nginx",
    show_default=True,
    help="nginx: SSH hosts behind nginx; vercel: a Vercel project.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where to write (the app's repository).",
)
@click.option("--app", "app_name", default=None, help="The app's name (default: the folder's).")
@click.pass_obj
def init(app: Application, target: str, directory: str, app_name: str | None) -> None:
    """Write a playbook, what the target needs beside it, and a GitHub Actions workflow.

    Never overwrites: if any of the files exists, nothing is written (exit 2).
    Example: deployer init --target nginx --app shop
    """
    root = Path(directory)
    name = app_name or _default_app(root)
    if not APP_NAME.fullmatch(name):
        raise InputError(
            f"--app {printable(name)!r}: use lowercase letters, digits and dashes (at most 63)"
        )
    plan = [(src, root / dest, exe) for src, dest, exe in FILES[target]]
    existing = [str(dest) for _, dest, _ in plan if dest.exists() or dest.is_symlink()]
    if existing:
        raise InputError(
            f"deployer init writes nothing over existing files: {', '.join(existing)} "
            "(move them away, or use --dir)"
        )
    templates = resources.files("deployer") / "init_templates"
    written = []
    for src, dest, exe in plan:
        text = (templates / src).read_text(encoding="utf-8").replace("__APP__", name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with dest.open("x", encoding="utf-8") as fh:  # never over a file created meanwhile
            fh.write(text)
        if exe:
            dest.chmod(dest.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        written.append(str(dest))
    if app.json:
        app.emit_json({"target": target, "app": name, "written": written, "next": NEXT[target]})
        return
    for path in written:
        app.out.print(f"wrote {path}", markup=False, highlight=False)
    app.out.print("next:", markup=False)
    for i, step in enumerate(NEXT[target], 1):
        app.out.print(f"  {i}. {step}", markup=False, highlight=False)
