"""deployer's command line: a thin click layer over the engine (:mod:`deployer.cli.root` has
the group and its commands, :mod:`deployer.cli.entry` the entry point)."""

from __future__ import annotations

from deployer.cli.entry import main

__all__ = ["main"]
