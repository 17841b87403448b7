"""Playbooks: the pydantic model, YAML loading with line numbers, variables and secrets."""

from deployer.playbook.loader import LoadedPlaybook, load_playbook, parse_playbook
from deployer.playbook.models import Playbook

__all__ = ["LoadedPlaybook", "Playbook", "load_playbook", "parse_playbook"]
