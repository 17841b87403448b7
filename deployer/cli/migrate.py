"""`deployer migrate --contract`: run deferred contract revisions once allowed."""

from __future__ import annotations

import click

from deployer.cli.app import Application
from deployer.cli.common import ACCEPT, PLAYBOOK, _engine, _operate
from deployer.errors import InputError


def register(cli: click.Group) -> None:
    cli.add_command(migrate)


@click.command()
@PLAYBOOK
@click.option(
    "--contract",
    is_flag=True,
    help="Run the contract revisions a release deferred (migrate.contract: deferred), once "
    "its rollback window has closed and no version that needs the old shape runs.",
)
@ACCEPT
@click.pass_obj
def migrate(app: Application, playbook: str, contract: bool, accept_new_host_key: bool) -> None:
    """Run deferred contract revisions (exit 5, saying when, while a version that needs the
    old shape could still be rolled back to).

    Example: deployer migrate -p playbooks/production.yml --contract
    """
    if not contract:
        raise InputError(
            "deployer migrate runs deferred contract revisions: give --contract (a release "
            "runs the expand ones)"
        )
    from deployer.engine.contract import run_contract

    engine = _engine(app, playbook, (), accept_new_host_key)
    _operate(app, engine, lambda: run_contract(engine))
