"""Small file commands: per-color state records and directory uploads (as tar archives)."""

from __future__ import annotations

from deployer.values import Shell, join


def ensure_dir(path: str) -> Shell:
    """``mkdir -p`` only when ``path`` is not a directory yet: a process fewer per step and
    host in the common case (a release ran ~60 processes per host; each costs ~1-2 ms of a
    host's CPU, and on a fleet of small hosts they are most of a release's time)."""
    d = join([path]).text
    return Shell.raw(f"{{ [ -d {d} ] || mkdir -p -- {d}; }}")


def state_file(state_dir: str, color: str) -> str:
    return f"{state_dir.rstrip('/')}/{color}.version"


def write_state(state_dir: str, color: str, version: str) -> Shell:
    """Record the version a color runs (written after it was shipped)."""
    path = state_file(state_dir, color)
    return (
        ensure_dir(state_dir)
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
    # the first line, at most 256 characters, read by bash itself: `$(head | head)` started
    # three processes per color on every host before each release and in `status`
    return Shell.raw(
        f"for c in blue green; do f={d}/$c.version; "
        '[ -f "$f" ] && { v=; { IFS= read -r -n 256 v; } <"$f" 2>/dev/null; echo "$c $v"; }; '
        "done; true"
    )


def observe_host(state_dir: str, statuses: dict[str, Shell], owned: list[str]) -> Shell:
    """One round trip: first the paths in ``owned`` are proven safe from other users (exit
    :data:`UNTRUSTED_PATH`, before any status command runs), then each color's recorded
    version (``color version``) and, for each color whose status command succeeds,
    ``up color``."""
    checks = "; ".join(
        f"if {{ {cmd.text}; }} >/dev/null 2>&1; then echo {join([f'up {color}']).text}; fi"
        for color, cmd in statuses.items()
    )
    shown = "; ".join(f"{color}: {cmd.shown}" for color, cmd in statuses.items())
    states = read_states(state_dir)
    trust = f"( {check_owned(owned).text} ) || exit {UNTRUSTED_PATH}"
    return Shell.around(
        f"{trust}; {states.text}; {checks}; true",
        f"check who may write {', '.join(owned)}; {states.shown}; status {shown}",
        *statuses.values(),
    )


MANIFEST = ".deployer-manifest"


def make_staging_dir(dest: str) -> Shell:
    """A fresh private directory for an upload, beside ``dest`` (so the final rename is
    atomic and on one filesystem); prints its path."""
    parent = dest.rstrip("/").rsplit("/", 1)[0] or "/"
    template = f"{parent.rstrip('/')}/.deployer-upload.XXXXXXXXXX"
    return ensure_dir(parent).then(Shell.raw(f"umask 077 && mktemp -d -- {join([template]).text}"))


def inspect_release(dest: str) -> Shell:
    """``unmanaged`` (there, not shipped by deployer), ``manifest`` and its JSON on the next
    line, or (absent) ``staged`` and a fresh staging directory for the upload (one round
    trip for the common case)."""
    d, m = join([dest]).text, join([f"{dest.rstrip('/')}/{MANIFEST}"]).text
    return Shell.raw(
        f"if [ -f {m} ]; then echo manifest; head -c 4096 {m}; "
        f"elif [ -e {d} ] || [ -L {d} ]; then echo unmanaged; "
        f"else echo staged; {make_staging_dir(dest).text}; fi"
    )


def clean_staging(dest: str) -> Shell:
    """Remove the upload staging directories beside ``dest`` (one left by a release that was
    killed mid-upload; under the deploy lock no other upload is in flight)."""
    parent = dest.rstrip("/").rsplit("/", 1)[0] or "/"
    return Shell.raw(f"rm -rf -- {join([parent]).text}/.deployer-upload.*")


def install_release(staging: str, dest: str, manifest: str) -> Shell:
    """Unpack the staged archive into ``staging/tree``, write the manifest, rename the tree
    to ``dest`` in one rename(2) (never over an existing release), remove the staging."""
    s, tree = join([staging]).text, join([f"{staging}/tree"]).text
    archive = join([f"{staging}/upload.tar.gz"]).text
    m = join([f"{staging}/tree/{MANIFEST}"]).text
    return Shell.raw(
        f"{{ mkdir -- {tree} && tar -xzf {archive} -C {tree} && "
        f"printf '%s\\n' {join([manifest]).text} > {m} && chmod 755 {tree} && "
        f"mv -T -- {tree} {join([dest]).text}; }}; rc=$?; rm -rf -- {s}; exit $rc"
    )


def receive_and_install(staging: str, dest: str, manifest: str) -> Shell:
    """The archive from stdin into the private staging directory, then
    :func:`install_release`: the whole upload in one session."""
    archive = join([f"{staging}/upload.tar.gz"]).text
    install = install_release(staging, dest, manifest)
    return Shell.raw(
        f"if ! cat > {archive}; then rm -rf -- {join([staging]).text}; exit 1; fi; {install.text}"
    )


def require_release(dest: str, version: str) -> Shell:
    """Fails (before anything changed) when a version's directory is not on the host."""
    m = join([f"{dest.rstrip('/')}/{MANIFEST}"]).text
    why = join([f"{dest} (version {version}) is no longer on this host; a rollback never uploads"])
    return Shell.raw(f"if [ ! -f {m} ]; then echo {why.text} >&2; exit 3; fi")


def prune_releases(parent: str, keep: int, protect: list[str]) -> Shell:
    """Remove the oldest shipped versions beyond ``keep`` (by manifest time), never one in
    ``protect`` (the live and the warm version) and never a name deployer could not have made.
    ``protect`` reaches the shell as one quoted assignment (a version read back from a host
    is checked before it gets here, and quoted all the same)."""
    listed = join([" " + " ".join(protect) + " "]).text
    return Shell.raw(
        f"cd -- {join([parent]).text} 2>/dev/null || exit 0; n=0; keep={listed}; "
        f"for m in $(ls -1t -- */{MANIFEST} 2>/dev/null); do d=${{m%/{MANIFEST}}}; "
        'case $d in *[!A-Za-z0-9._+-]*|"") continue;; esac; n=$((n+1)); '
        f"[ $n -le {int(keep)} ] && continue; "
        'case "$keep" in *" $d "*) continue;; esac; rm -rf -- "./$d"; done; true'
    )


def make_parent(path: str) -> Shell:
    parent = path.rstrip("/").rsplit("/", 1)[0] or "/"
    return ensure_dir(parent)


def _timer_file(state_dir: str, color: str) -> str:
    return f"{state_dir.rstrip('/')}/{color}.stop-timer"


#: exit status of :func:`check_owned` when a path could be changed by another user
UNTRUSTED_PATH = 92


def check_owned(paths: list[str]) -> Shell:
    """Fails with :data:`UNTRUSTED_PATH` (the path and why on stderr) unless every path in
    ``paths`` and every directory above it, up to ``/``, is owned by root or the user
    deployer runs as and writable by nobody else, as sshd's StrictModes asks of a home
    directory: whoever can write a directory on the way can swap what is below it. Both the
    path as written (a link is judged by the directory it is in) and where it resolves to
    are checked. A sticky directory writable by all (``/tmp``) is passed only through an
    entry that exists and is owned right (others cannot rename or remove it); a path still
    to be created directly in one is refused (anyone could create it first). Nothing is
    changed."""
    # Two processes whatever the depth (realpath, stat; bash's own $EUID, not `id -u`), not
    # two per directory: on a fleet of small hosts the check ran ~30 processes per host
    # before every release and status (measured: 0.4-0.6 s per host with 20 hosts on two
    # cores).
    script = (
        "me=$EUID; bad=; L=(); B=(); "
        # the entries that exist on the way up from $1 (itself first), each with whether an
        # existing entry lies below it on that way (a sticky directory is passed only so)
        "_up() { cur=$1; below=0; while :; do "
        'if [ -e "$cur" ] || [ -L "$cur" ]; then L+=("$cur"); B+=("$below"); below=1; fi; '
        '[ "$cur" = / ] && return; case $cur in /*) ;; *) return;; esac; '
        'cur=${cur%/*}; [ -z "$cur" ] && cur=/; done; }; '
        # where each path resolves to, NUL-separated (any byte but NUL may be in a name)
        "R=(); while IFS= read -r -d '' r; do R+=(\"$r\"); done "
        '< <(realpath -zm -- "$@" 2>/dev/null); '
        'if [ "${#R[@]}" != "$#" ]; then bad="$*: cannot resolve"; else i=0; '
        'for p in "$@"; do _up "$p"; [ "${R[i]}" != "$p" ] && _up "${R[i]}"; '
        "i=$((i + 1)); done; fi; "
        'if [ -z "$bad" ] && [ "${#L[@]}" != 0 ]; then '
        'S=$(stat -c \'%u %g %a %F\' -- "${L[@]}") || bad="${L[*]}: cannot stat"; fi; '
        'if [ -z "$bad" ] && [ "${#L[@]}" != 0 ]; then mapfile -t S <<<"$S"; '
        '[ "${#S[@]}" = "${#L[@]}" ] || bad="${L[*]}: cannot stat"; fi; '
        'if [ -z "$bad" ]; then for i in "${!L[@]}"; do cur=${L[i]}; '
        'read -r u g a t <<<"${S[i]}"; v=$((0$a)); '
        'if [ "$u" != 0 ] && [ "$u" != "$me" ]; then bad="$cur: owned by uid $u"; break; fi; '
        # group or others may write (group root counts as root)
        'w=$((v & 18)); [ "$g" = 0 ] && w=$((v & 2)); '
        'if [ "$t" != "symbolic link" ] && [ "$w" != 0 ] && '
        '! { [ $((v & 512)) != 0 ] && [ "$t" = directory ] && [ "${B[i]}" = 1 ]; }; then '
        'bad="$cur: writable by other users (mode $a)"; break; fi; done; fi; '
        f'if [ -n "$bad" ]; then echo "untrusted path $bad" >&2; exit {UNTRUSTED_PATH}; fi'
    )
    return Shell.raw(f"set -- {join(paths).text}; {script}") if paths else Shell.raw("true")


def kill_recorded(pid_file: str, tag: str) -> str:
    """Shell text: signal the process group whose leader's pid is in ``pid_file``, only if
    that process is one deployer started there (owned by this user, ``tag`` on its command
    line); the file is removed either way. A pid file someone else wrote (``1``, another
    user's process, garbage) signals nothing."""
    f, t = join([pid_file]).text, join([tag]).text
    # no file (the common case: the timer ran and removed it): no process started at all
    return (
        f"if [ -e {f} ] || [ -L {f} ]; then p=; {{ read -r -n 32 p; }} <{f} 2>/dev/null; "
        f"rm -f -- {f}; "
        'case $p in ""|*[!0-9]*|0|1) ;; *) '
        'if [ "$(stat -c %u /proc/$p 2>/dev/null)" = "$EUID" ] && '
        f"tr '\\0' '\\n' < /proc/$p/cmdline 2>/dev/null | grep -qxF -- {t}; then "
        'kill -- -"$p" 2>/dev/null; fi;; esac; fi'
    )


def stop_timer_tag(state_dir: str, color: str) -> str:
    """The last word of a stop timer's command line (what :func:`kill_recorded` looks for)."""
    return f"deployer-stop-timer:{_timer_file(state_dir, color)}"


def schedule_stop(state_dir: str, color: str, delay: float, stop: Shell) -> Shell:
    """Stop ``color`` after ``delay`` seconds, from a detached process group on the host.

    Its pid goes to a timer file so that :func:`cancel_stop` can call it off (a rollback to
    the warm color, or a release that reuses it); its command line ends with a tag that
    proves, before any signal, that the pid is this timer's.
    """
    timer = join([_timer_file(state_dir, color)]).text
    script = f"sleep {delay:g} && {{ {stop.text}; }}; rm -f {timer}"
    body = join(["sh", "-c", script, stop_timer_tag(state_dir, color)])
    shown = f"after {delay:g}s: {stop.shown}"
    # `a && b &` would background a subshell that keeps the SSH channel open: keep them apart
    text = (
        f"{ensure_dir(state_dir).text} || exit 1; "
        f"setsid {body.text} >/dev/null 2>&1 </dev/null & echo $! > {timer}"
    )
    # a secret in the stop command reaches the timer through its environment (inherited
    # from the shell that runs this), never its argv: `ps` shows only the reference
    return Shell.around(text, f"schedule on the host ({shown}); timer pid in {timer}", stop)


def cancel_stop(state_dir: str, color: str) -> Shell:
    """Call off a scheduled stop of ``color`` (kills the timer's whole process group, once
    its pid is proven to be the timer's)."""
    timer = _timer_file(state_dir, color)
    return Shell.raw(f"{kill_recorded(timer, stop_timer_tag(state_dir, color))}; true")


def one_at_a_time(state_dir: str, command: Shell, wait: float = 600.0) -> Shell:
    """``command`` under a lock file in ``state_dir`` (flock), held by the command itself: a
    migration left running by a deployer that was killed keeps it, so the next run waits
    for it to end (at most ``wait`` seconds) instead of racing it."""
    lock = join([f"{state_dir.rstrip('/')}/.deployer-migrate.lock"]).text
    text = (
        f"{ensure_dir(state_dir).text} && {{ flock -w {int(wait)} 9 || "
        f"{{ echo 'another migration still runs on this host' >&2; exit 75; }}; "
        f"{command.text}\n}} 9>>{lock}"
    )
    return Shell.around(text, f"(one migration at a time) {command.shown}", command)


def _db_revision_file(state_dir: str, version: str) -> str:
    return f"{state_dir.rstrip('/')}/db-revision.{version}"


def write_db_revision(
    state_dir: str, version: str, revision: str | None, own_contracts: list[str] | None = None
) -> Shell:
    """Remember the database revision ``version`` went live with (a rollback to it later
    names the revisions the database is ahead by), and on a second line the contract
    revisions it brought and deferred (it works without what they remove)."""
    f = join([_db_revision_file(state_dir, version)]).text
    body = (revision or "base") + ("\n" + ",".join(own_contracts) if own_contracts else "")
    return Shell.raw(
        f"{ensure_dir(state_dir).text} && printf '%s\\n' {join([body]).text}"
        f" > {f}.tmp && mv -f -- {f}.tmp {f}"
    )


def read_db_revision(state_dir: str, version: str) -> Shell:
    """Prints the recorded revision, or nothing."""
    f = join([_db_revision_file(state_dir, version)]).text
    return Shell.raw(f"cat -- {f} 2>/dev/null; true")
