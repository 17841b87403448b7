"""Every `deployer ...` example in the README's and the documentation's tables and code
blocks parses as written: each option and argument it uses exists (a command a newcomer
copies must run)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from deployer.cli.root import cli

ROOT = Path(__file__).resolve().parent.parent
README = "\n".join(
    p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
)


def examples() -> list[str]:
    """The commands table's first column, and `deployer` lines of the shell code blocks."""
    found = re.findall(r"^\| `(deployer [^`]+)` \|", README, re.MULTILINE)
    for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL):
        block = block.replace("\\\n", " ")  # continued lines
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if " && " in line:
                line = line.split(" && ")[-1]
            if line.startswith("deployer "):
                found.append(line)
    out = []
    for text in found:
        text = re.sub(r"\s*\[[^\]]*\]", "", text)  # optional parts in [brackets]
        text = text.split(" > ")[0].split(" | ")[0].strip().rstrip("\\").strip()
        if "..." in text or "…" in text or text.endswith(("-p", "--")):
            continue  # an elided command, not one to copy
        out.append(text)
    return sorted(set(out))


def parse(argv: list[str]) -> None:
    ctx = cli.make_context("deployer", argv, resilient_parsing=False)
    command: click.Command = cli
    while isinstance(command, click.Group):
        protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
        args = [*protected, *ctx.args]
        if not args:
            return
        name, sub, rest = command.resolve_command(ctx, args)
        assert sub is not None, name
        ctx = sub.make_context(name or "", rest, parent=ctx)
        command = sub


def test_the_readme_and_docs_have_examples_to_check() -> None:
    assert len(examples()) > 25


@pytest.mark.parametrize("example", examples())
def test_readme_example_parses(example: str) -> None:
    argv = shlex.split(example)[1:]
    try:
        parse(argv)
    except click.exceptions.Exit:
        pass  # --help, --version
    except click.UsageError as exc:
        pytest.fail(f"{example}: {exc.format_message()}")
