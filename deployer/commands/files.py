"""Small file commands: per-color state records and directory uploads (as tar archives)."""

from __future__ import annotations

from deployer.commands.shell import Shell, join


def state_file(state_dir: str, color: str) -> str:
    return f"{state_dir.rstrip('/')}/{color}.version"


def write_state(state_dir: str, color: str, version: str) -> Shell:
    """Record the version a color runs (written after it was shipped)."""
    path = state_file(state_dir, color)
    return join(["mkdir", "-p", "--", state_dir]).then(
        Shell.raw(f"printf '%s\\n' {join([version]).text} > {join([path + '.tmp']).text}")
    ).then(join(["mv", "-f", path + ".tmp", path]))


def read_states(state_dir: str) -> Shell:
    """Prints ``color version`` lines for the colors that have a recorded version."""
    d = join([state_dir.rstrip("/")]).text
    return Shell.raw(
        f"for c in blue green; do f={d}/$c.version; [ -f \"$f\" ] && echo \"$c $(cat \"$f\")\"; done; true"
    )


def extract_archive(archive: str, dest: str) -> Shell:
    """Unpack an uploaded tar.gz into ``dest`` (created) and remove the archive."""
    return join(["mkdir", "-p", "--", dest]).then(join(["tar", "-xzf", archive, "-C", dest])).then(
        join(["rm", "-f", "--", archive])
    )


def make_parent(path: str) -> Shell:
    parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
    return join(["mkdir", "-p", "--", parent])
