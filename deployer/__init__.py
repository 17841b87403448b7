"""deployer: zero-downtime, provable blue-green releases.

The public surface: :func:`load_playbook` and :data:`__version__`. Imports are lazy so that
`deployer --help` does not pay for pydantic, fabric or httpx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_playbook"]

if TYPE_CHECKING:
    from deployer.playbook import load_playbook


def __getattr__(name: str) -> Any:
    if name == "load_playbook":
        from deployer.playbook import load_playbook

        return load_playbook
    raise AttributeError(name)
