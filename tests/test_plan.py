"""Plans (pure): what a release, a rollback and a drill would do, and what undoes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.commands.alembic import alembic
from deployer.errors import PlaybookError
from deployer.lint.gate import revisions_ahead
from deployer.plan import (
    CheckDatabase,
    Commit,
    Context,
    DrillVerdict,
    Migrate,
    Observed,
    Run,
    Upload,
    drill_plan,
    release_plan,
    rollback_plan,
)
from deployer.playbook import load_playbook
from deployer.values import Secret, Shell

ROOT = Path(__file__).resolve().parent.parent

PLAYBOOK = """\
app: shop
hosts: [{name: web1, address: 10.0.0.5}]
colors: {blue: {port: 8001}, green: {port: 8002}}
vars: {root: /srv/shop, fail_after: "-1"}
ship:
  - name: upload app
    upload: {src: app, dest: "${root}/releases/${version}"}
  - name: link
    run: ln -sfn ${root}/releases/${version} ${root}/${color}
service:
  start: ${root}/${color}/run start ${color} ${port} ${fail_after}
  stop: ${root}/${color}/run stop ${color}
  status: ${root}/${color}/run status ${color}
router: {upstream_file: /etc/nginx/u.conf, url: "http://127.0.0.1:8080"}
migrate:
  scripts: MIGRATIONS
  command: cd ${root}/releases/${version} && alembic
  database_url: ${env:DATABASE_URL}
drill: {broken_vars: {fail_after: "3"}}
state_dir: /srv/shop/state
"""


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    (tmp_path / "app").mkdir()
    path = tmp_path / "p.yml"
    path.write_text(PLAYBOOK.replace("MIGRATIONS", str(ROOT / "migrations_safe")))
    return Context(load_playbook(path), {"DATABASE_URL": "postgresql://u:hunter22@db/shop"})


def _observed(warm: bool) -> Observed:
    return Observed(
        "blue",
        "v2",
        "upstream shop { server 10.0.0.5:8001; }",
        {"web1": {"blue": "v2", "green": "v1"}},
        {"web1": {"blue": True, "green": warm}},
    )


def _text(run: object) -> str:
    assert isinstance(run, Run)
    return " ; ".join(c.text for c in run.commands)


def test_an_aborted_release_restarts_the_warm_previous_color(ctx: Context) -> None:
    steps = release_plan(ctx, _observed(warm=True), "v3")
    stop_idle = next(s for s in steps if s.name == "stop-idle")
    undo = stop_idle.undo
    assert isinstance(undo, Run) and undo.best_effort  # never turns an abort into exit 6
    text = _text(undo)
    # the v1 directory is required (never re-uploaded), relinked, started, kept warm again
    assert "/srv/shop/releases/v1/.deployer-manifest" in text
    assert "ln -sfn /srv/shop/releases/v1 /srv/shop/green" in text
    assert "run start green 8002 -1" in text and "stop-timer" in text


def test_a_color_that_was_not_running_is_not_restarted(ctx: Context) -> None:
    steps = release_plan(ctx, _observed(warm=False), "v3")
    assert next(s for s in steps if s.name == "stop-idle").undo is None


def test_a_drill_never_uploads_or_migrates_and_ends_in_its_verdict(ctx: Context) -> None:
    steps = drill_plan(ctx, _observed(warm=True), "v2")
    names = [s.name for s in steps]
    assert not any(isinstance(s.do, Upload | Migrate | Commit) for s in steps)
    assert not any(s.after_pivot for s in steps)
    assert names[-1] == "drill-verdict" and isinstance(steps[-1].do, DrillVerdict)
    assert names.index("switch") < names.index("post-switch-gate") < names.index("drill-verdict")
    assert "check:upload app" in names  # the live version's directory must be on the host
    assert "arm-dead-man" in names  # the timer bounds a drill's exposure too


def test_a_broken_drill_breaks_only_the_new_build(ctx: Context) -> None:
    broken = Context(ctx.loaded, ctx.env, {"fail_after": "3"})
    steps = drill_plan(ctx, _observed(warm=True), "v2", broken=broken)
    assert steps[-1].do == DrillVerdict(broken=True)
    start = next(s for s in steps if s.name == "start")
    assert "run start green 8002 3" in _text(start.do)
    rewarm = next(s for s in steps if s.name == "stop-idle").undo
    assert "run start green 8002 -1" in _text(rewarm)  # the restored color is not broken


def test_a_rollback_checks_the_database_and_never_migrates(ctx: Context) -> None:
    observed = Observed(
        "blue",
        "v2",
        "upstream shop {}",
        {"web1": {"blue": "v2", "green": "v1"}},
        {"web1": {"blue": True, "green": False}},
    )
    version, steps = rollback_plan(ctx, observed)
    assert version == "v1"
    assert isinstance(steps[0].do, CheckDatabase) and steps[0].do.version == "v1"
    assert not any(isinstance(s.do, Migrate | Upload) for s in steps)


def test_revisions_ahead_names_the_contract_ones() -> None:
    ahead = revisions_ahead(ROOT / "migrations_safe", "0014", "0011")
    assert ahead.revisions == ["0012", "0013", "0014"]
    assert [c["revision"] for c in ahead.contract] == ["0013"]
    assert revisions_ahead(ROOT / "migrations_safe", "0011", "0011").revisions == []
    assert "not in" in revisions_ahead(ROOT / "migrations_safe", "ffff", "0011").unknown


def test_the_migrate_command_plan_shows_runs_as_shown() -> None:
    """`plan` shows the command that runs (through sh -c), with only the URL hidden."""
    cmd = alembic(
        Shell.raw("cd /srv && alembic"), Secret("postgresql://u:pw@h/d"), 2, 60, "current"
    )
    assert cmd.shown.startswith("DATABASE_URL=*** PGOPTIONS=")
    assert "sh -c 'cd /srv && alembic \"$@\"' alembic current" in cmd.shown
    assert cmd.text.replace(cmd.text.split(" ", 1)[0], "DATABASE_URL=***", 1) == cmd.shown


def test_drill_broken_vars_must_name_playbook_vars(tmp_path: Path) -> None:
    path = tmp_path / "p.yml"
    path.write_text(PLAYBOOK.replace("MIGRATIONS", "m").replace('{fail_after: "3"}', "{nope: x}"))
    with pytest.raises(PlaybookError, match=r"drill\.broken_vars\.nope: no such var"):
        load_playbook(path)


def test_a_rewarmed_color_starts_without_this_runs_var_overrides(ctx: Context) -> None:
    """`--var fail_after=0` was meant for v3: v1 is started again as the playbook says."""
    overridden = Context(ctx.loaded, ctx.env, {"fail_after": "0"})
    steps = release_plan(overridden, _observed(warm=True), "v3")
    assert "run start green 8002 0" in _text(next(s for s in steps if s.name == "start").do)
    rewarm = next(s for s in steps if s.name == "stop-idle").undo
    assert "run start green 8002 -1" in _text(rewarm)


def test_plan_with_a_live_color_shows_the_steps_a_real_release_runs(tmp_path: Path) -> None:
    """`plan --live blue` (no router asked) lists the dead-man timer a release arms."""
    import contextlib
    import io
    import json

    from deployer.cli.entry import main

    (tmp_path / "app").mkdir()
    path = tmp_path / "p.yml"
    path.write_text(PLAYBOOK.replace("MIGRATIONS", str(ROOT / "migrations_safe")))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["-o", "json", "plan", "-p", str(path), "--version", "v3", "--live", "blue"])
    names = [s["step"] for s in json.loads(out.getvalue())["steps"]]
    assert names.index("arm-dead-man") < names.index("switch") < names.index("commit")
