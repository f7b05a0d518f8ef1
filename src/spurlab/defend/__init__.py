"""Defenses: transform a dataset before training, report what was removed; registered by name."""

from spurlab.defend.base import (
    DEFENSES,
    Defense,
    DefenseParams,
    DefenseSpec,
    available_defenses,
    get_defense,
    register_defense,
)
from spurlab.defend.normalize import Normalize, normalize
from spurlab.defend.onion import Onion, onion
from spurlab.defend.paraphrase import Paraphrase, paraphrase
from spurlab.defend.paraphrase_survival import survival
from spurlab.defend.sanitize import ScanSanitize, load_findings, sanitize

__all__ = ["DEFENSES", "Defense", "DefenseParams", "DefenseSpec", "Normalize", "Onion", "Paraphrase",
           "ScanSanitize", "available_defenses", "get_defense", "load_findings", "normalize", "onion", "paraphrase",
           "register_defense", "sanitize", "survival"]
