"""Seamless Spurious Token Injection: token sources, the injector, its manifest and the exact undo."""

from spurlab.inject.config import InjectionConfig
from spurlab.inject.injector import InjectionResult, inject, inject_many, rows_to_modify, undo
from spurlab.inject.manifest import read_manifest, save_result, write_manifest
from spurlab.inject.report import collision_report, tokenizer_report
from spurlab.inject.sources import (
    DATE_SHAPE,
    TokenSource,
    available_sources,
    build_source,
    load_word_list,
    read_token_file,
    register_source,
)

__all__ = [
    "DATE_SHAPE",
    "InjectionConfig",
    "InjectionResult",
    "TokenSource",
    "available_sources",
    "build_source",
    "collision_report",
    "inject",
    "inject_many",
    "load_word_list",
    "read_manifest",
    "read_token_file",
    "register_source",
    "rows_to_modify",
    "save_result",
    "tokenizer_report",
    "undo",
    "write_manifest",
]
