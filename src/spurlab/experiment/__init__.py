"""One experiment: its typed config, the run-folder contract, the stages that run it, and the demo."""

from spurlab.experiment.config import ExperimentConfig, config_from_dict, dump_config, load_experiment_config
from spurlab.experiment.run_folder import is_complete
from spurlab.experiment.runner import RunCache, RunResult, load_data, run_experiment, splits_sha256, validate_run

__all__ = ["ExperimentConfig", "RunCache", "RunResult", "config_from_dict", "dump_config", "is_complete",
           "load_data", "load_experiment_config", "run_experiment", "splits_sha256", "validate_run"]
