"""Datasets: loaders for files, the hub, the paper's presets and the bundled corpus; splits."""

from spurlab.data.dataset import DatasetSplits, TextDataset
from spurlab.data.loaders import bundled_tweets_path, load_splits, load_table, table_suffix, write_table
from spurlab.data.presets import PRESETS

__all__ = ["PRESETS", "DatasetSplits", "TextDataset", "bundled_tweets_path", "load_splits", "load_table",
           "table_suffix", "write_table"]
