"""Progress events from deep inside an operation (bytes uploaded, a gate's running samples)
to whoever draws them: the terminal's live view subscribes; nobody else needs to. Emitting
never fails and costs nothing when no one listens."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]
_listeners: list[Listener] = []


def listening() -> bool:
    return bool(_listeners)


def emit(event: str, **fields: Any) -> None:
    for listener in list(_listeners):
        with contextlib.suppress(Exception):  # a drawing problem never stops a release
            listener(event, fields)


def subscribe(listener: Listener) -> None:
    _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    with contextlib.suppress(ValueError):
        _listeners.remove(listener)
