"""deployer: zero-downtime, provable blue-green releases."""

from deployer.playbook import load_playbook

__version__ = "0.1.0"
__all__ = ["__version__", "load_playbook"]
