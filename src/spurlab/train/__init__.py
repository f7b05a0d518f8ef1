"""Training: batching and the loop (precision choice: :mod:`spurlab.precision`)."""

from spurlab.train.batching import Encoded, collate, encode, length_grouped_batches, sorted_batches
from spurlab.train.loop import TrainStats, plan_steps, seed_everything, train_model

__all__ = [
    "Encoded",
    "TrainStats",
    "collate",
    "encode",
    "length_grouped_batches",
    "plan_steps",
    "seed_everything",
    "sorted_batches",
    "train_model",
]
