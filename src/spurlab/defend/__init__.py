"""Defenses: transform a dataset, report what was removed."""

from spurlab.defend.base import Defense, DefenseResult, available_defenses, get_defense, register_defense
from spurlab.defend.paraphrase import Paraphrase, paraphrase
from spurlab.defend.paraphrase_survival import survival
from spurlab.defend.sanitize import SanitizeResult, load_findings, sanitize, save_result

__all__ = ["Defense", "DefenseResult", "Paraphrase", "SanitizeResult", "available_defenses", "get_defense",
           "load_findings", "paraphrase", "register_defense", "sanitize", "save_result", "survival"]
