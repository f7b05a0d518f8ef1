"""Training: batching, precision, the loop."""

from spurlab.train.batching import Encoded, collate, encode, length_grouped_batches, sorted_batches
from spurlab.train.loop import TrainStats, plan_steps, seed_everything, train_model
from spurlab.train.precision import autocast, resolve_precision

__all__ = [
    "Encoded",
    "TrainStats",
    "autocast",
    "collate",
    "encode",
    "length_grouped_batches",
    "plan_steps",
    "resolve_precision",
    "seed_everything",
    "sorted_batches",
    "train_model",
]
