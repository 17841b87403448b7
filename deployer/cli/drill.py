"""`deployer drill`: a rollback drill on the real system."""

from __future__ import annotations

import click

from deployer.cli.app import Application


def register(cli: click.Group) -> None:
    from deployer.cli.common import ACCEPT, PLAYBOOK, VARS, _engine, _operate

    @cli.command()
    @PLAYBOOK
    @click.option(
        "--version",
        "version",
        default=None,
        help="The version to drill with (default: the live one, started from its directory "
        "on the hosts, never uploaded).",
    )
    @click.option(
        "--broken",
        is_flag=True,
        help="Release a build whose post-switch gate fails (drill.broken_vars): the real "
        "gate has to catch it and roll back.",
    )
    @click.option(
        "--bound",
        default=None,
        metavar="DURATION",
        help="Most time from the rollback verdict to traffic back on the old color "
        "(default: drill.restore_bound).",
    )
    @VARS
    @ACCEPT
    @click.pass_obj
    def drill(
        app: Application,
        playbook: str,
        version: str | None,
        broken: bool,
        bound: str | None,
        vars_: tuple[str, ...],
        accept_new_host_key: bool,
    ) -> None:
        """Prove rollback: release to the idle color, switch, roll back as a failing gate
        would, measure detection and restore, end as it started, record a `drill`.

        Exits 0 only if traffic came back within the bound and every host is as before;
        8 if the drill ran but proved nothing good (too slow, a broken build the gates
        missed, a changed system); 3 if it stopped before the switch. Example:
        deployer drill -p playbooks/demo.yml --broken --bound 5s
        """
        from deployer.errors import InputError
        from deployer.playbook.models import parse_duration
        from deployer.playbook.variables import check_version

        seconds = None
        if bound is not None:
            try:
                seconds = parse_duration(bound)
            except ValueError as exc:
                raise InputError(f"--bound {bound!r}: {exc}") from None
            if seconds <= 0:
                raise InputError(f"--bound {bound!r}: must be more than 0s")
        if version is not None:
            check_version(version)
        engine = _engine(app, playbook, vars_, accept_new_host_key)
        from deployer.engine.drill import Drill

        drill = Drill(engine, version, broken=broken, bound=seconds)
        _operate(app, engine, drill.run)
