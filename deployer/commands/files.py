"""Small file commands: per-color state records and directory uploads (as tar archives)."""

from __future__ import annotations

from deployer.commands.shell import Shell, join


def state_file(state_dir: str, color: str) -> str:
    return f"{state_dir.rstrip('/')}/{color}.version"


def write_state(state_dir: str, color: str, version: str) -> Shell:
    """Record the version a color runs (written after it was shipped)."""
    path = state_file(state_dir, color)
    return (
        join(["mkdir", "-p", "--", state_dir])
        .then(Shell.raw(f"printf '%s\\n' {join([version]).text} > {join([path + '.tmp']).text}"))
        .then(join(["mv", "-f", path + ".tmp", path]))
    )


def restore_state(state_dir: str, color: str, version: str | None) -> Shell:
    """Put back the version a color had before (none: forget it)."""
    if version:
        return write_state(state_dir, color, version)
    return join(["rm", "-f", "--", state_file(state_dir, color)])


def read_states(state_dir: str) -> Shell:
    """Prints ``color version`` lines for the colors that have a recorded version."""
    d = join([state_dir.rstrip("/")]).text
    return Shell.raw(
        f'for c in blue green; do f={d}/$c.version; [ -f "$f" ] && echo "$c $(cat "$f")"; '
        "done; true"
    )


def observe_host(state_dir: str, statuses: dict[str, Shell]) -> Shell:
    """One round trip: each color's recorded version (``color version``) and, for each
    color whose status command succeeds, ``up color``."""
    checks = "; ".join(
        f"if {{ {cmd.text}; }} >/dev/null 2>&1; then echo {join([f'up {color}']).text}; fi"
        for color, cmd in statuses.items()
    )
    shown = "; ".join(f"{color}: {cmd.shown}" for color, cmd in statuses.items())
    states = read_states(state_dir)
    return Shell.around(
        f"{states.text}; {checks}; true", f"{states.shown}; status {shown}", *statuses.values()
    )


def make_staging_dir() -> Shell:
    """A fresh private directory for an upload (prints its path)."""
    return Shell.raw("umask 077 && mktemp -d -t deployer-upload.XXXXXXXXXX")


def extract_archive(archive: str, dest: str, cleanup: str | None = None) -> Shell:
    """Unpack an uploaded tar.gz into ``dest`` (created), then remove the archive (and the
    staging directory ``cleanup``, whatever the outcome)."""
    unpack = join(["mkdir", "-p", "--", dest]).then(join(["tar", "-xzf", archive, "-C", dest]))
    gone = join(["rm", "-rf", "--", cleanup or archive])
    return Shell.raw(f"{{ {unpack.text}; }}; rc=$?; {gone.text}; exit $rc")


def make_parent(path: str) -> Shell:
    parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
    return join(["mkdir", "-p", "--", parent])


def _timer_file(state_dir: str, color: str) -> str:
    return f"{state_dir.rstrip('/')}/{color}.stop-timer"


def schedule_stop(state_dir: str, color: str, delay: float, stop: Shell) -> Shell:
    """Stop ``color`` after ``delay`` seconds, from a detached process group on the host.

    Its pid goes to a timer file so that :func:`cancel_stop` can call it off (a rollback to
    the warm color, or a release that reuses it).
    """
    timer = join([_timer_file(state_dir, color)]).text
    body = join(["sh", "-c", f"sleep {delay:g} && {{ {stop.text}; }}; rm -f {timer}"])
    shown = f"after {delay:g}s: {stop.shown}"
    # `a && b &` would background a subshell that keeps the SSH channel open: keep them apart
    text = (
        f"mkdir -p -- {join([state_dir]).text} || exit 1; "
        f"setsid {body.text} >/dev/null 2>&1 </dev/null & echo $! > {timer}"
    )
    # a secret in the stop command reaches the timer through its environment (inherited
    # from the shell that runs this), never its argv: `ps` shows only the reference
    return Shell.around(text, f"schedule on the host ({shown}); timer pid in {timer}", stop)


def cancel_stop(state_dir: str, color: str) -> Shell:
    """Call off a scheduled stop of ``color`` (kills the timer's whole process group)."""
    timer = join([_timer_file(state_dir, color)]).text
    return Shell.raw(
        f'if [ -f {timer} ]; then kill -- -"$(cat {timer})" 2>/dev/null; rm -f {timer}; fi; true'
    )
