"""Models as classifiers: loading (hub id, local folder, bundled), pooled head, PEFT adapters."""

from spurlab.models.adapters import attach_trainable, load_adapter, save_trained
from spurlab.models.loading import LoadedModel, load_classifier, load_tokenizer
from spurlab.models.peft_methods import default_target_modules
from spurlab.models.pooled import PooledClassifier
from spurlab.models.registry import cache_dir, resolve_model_name

__all__ = [
    "LoadedModel",
    "PooledClassifier",
    "attach_trainable",
    "cache_dir",
    "default_target_modules",
    "load_adapter",
    "load_classifier",
    "load_tokenizer",
    "resolve_model_name",
    "save_trained",
]
