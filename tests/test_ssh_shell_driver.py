"""The one-shell-per-host driver (deployer/adapters/ssh_shell.py) run by the real bash, fed
frames as deployer sends them: every script arrives byte for byte, whatever the locale."""

from __future__ import annotations

import os
import random
import shlex
import subprocess

import pytest

from deployer.adapters.ssh_shell import DRIVER, escape

#: what scripts hold: quotes, escapes printf or echo would read, UTF-8, control characters
NASTY = [chr(c) for c in range(1, 0x250)] + [
    "\\", "\\c", "\\x", "\\x4", "\\0", "\\u00e9", "%", "%b", "%s", "日本", "\U0001f600",
    "\n", "\r", "\t", "'", '"', "$", "`", "$(", "\\\\x41",
]  # fmt: skip


@pytest.mark.parametrize("locale", ["C", "C.UTF-8", "POSIX"])
def test_every_script_reaches_the_shell_byte_for_byte(locale: str) -> None:
    rng = random.Random(locale)
    frames, expected = b"T\n", b""
    for i in range(300):
        text = "".join(rng.choice(NASTY) for _ in range(rng.randint(0, 60)))
        frames += b"T N%d 0 " % i + escape(f"printf '%s' {shlex.quote(text)}") + b"\n"
        expected += text.encode() + b"\nN%d 0\n" % i
    frames += b"T last 0 " + escape("echo é; exit 7") + b"\n"
    expected += "é\n".encode() + b"\nlast 7\n"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", DRIVER],
        input=frames,
        capture_output=True,
        env={"PATH": os.environ["PATH"], "LC_ALL": locale},
        timeout=60,
        check=False,
    )
    assert proc.stdout == expected


def test_an_escaped_script_is_one_printable_line() -> None:
    line = escape("a b\n\\c\t'é'\x7f")
    assert line == b"a b\\x0a\\\\c\\x09'\\xc3\\xa9'\\x7f"
    assert all(0x20 <= b < 0x7F for b in line)
    with pytest.raises(ValueError):
        escape("a\0b")


def test_a_frame_without_the_token_ends_the_shell() -> None:
    frames = b"T\n" + b"T n1 0 " + escape("echo one") + b"\nX n2 0 " + escape("echo two") + b"\n"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", DRIVER],
        input=frames, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    assert proc.stdout == b"one\n\nn1 0\n" and proc.returncode == 3
