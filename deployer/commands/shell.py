"""What a runner sends to a host's shell: the script that carries a command's secrets on
stdin, and the scrubbing of what comes back."""

from __future__ import annotations

import shlex
from collections.abc import Iterable

from deployer.values import Secret, Shell


def stdin_script(command: Shell) -> str:
    """The script a runner feeds to ``bash -s`` when the command carries secrets: exports,
    then the command as one brace group (bash reads the whole group before running it, and
    the group's stdin is /dev/null, so nothing in it can read the rest of the script)."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in command.env)
    return f"{exports}{{\n{command.text}\n}} </dev/null\n"


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """Remove secret values from text that came back from a host (stderr, stdout)."""
    from deployer.redaction import Redactor

    return Redactor(s.value for s in secrets).text(text)
