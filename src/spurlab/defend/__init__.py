"""Defenses, registered by name: training-data defenses transform a dataset before training and report what
they removed; test-time defenses (:mod:`spurlab.defend.test_time`) reject suspicious inputs of a trained model."""

from spurlab.defend.base import (
    DEFENSES,
    Defense,
    DefenseParams,
    DefenseSpec,
    available_defenses,
    get_defense,
    register_defense,
)
from spurlab.defend.bki import Bki
from spurlab.defend.cube import Cube
from spurlab.defend.label_issues import LabelIssues
from spurlab.defend.normalize import Normalize, normalize
from spurlab.defend.onion import Onion, onion
from spurlab.defend.paraphrase import Paraphrase, paraphrase
from spurlab.defend.paraphrase_survival import survival
from spurlab.defend.rap import Rap
from spurlab.defend.sanitize import ScanSanitize, load_findings, sanitize
from spurlab.defend.strip import Strip
from spurlab.defend.test_time import (
    TEST_TIME_DEFENSES,
    TestTimeDefense,
    TestTimeDefenseSpec,
    evaluate_defense,
    register_test_time_defense,
)

__all__ = [
    "DEFENSES",
    "TEST_TIME_DEFENSES",
    "Bki",
    "Cube",
    "Defense",
    "DefenseParams",
    "DefenseSpec",
    "LabelIssues",
    "Normalize",
    "Onion",
    "Paraphrase",
    "Rap",
    "ScanSanitize",
    "Strip",
    "TestTimeDefense",
    "TestTimeDefenseSpec",
    "available_defenses",
    "evaluate_defense",
    "get_defense",
    "load_findings",
    "normalize",
    "onion",
    "paraphrase",
    "register_defense",
    "register_test_time_defense",
    "sanitize",
    "survival",
]
