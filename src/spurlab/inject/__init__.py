"""Seamless Spurious Token Injection: token sources, the injector, its manifest and the exact undo."""

from spurlab.inject.config import InjectionConfig
from spurlab.inject.injector import inject, inject_many, rows_to_modify, undo
from spurlab.inject.report import collision_report, tokenizer_report
from spurlab.inject.sources import (
    DATE_SHAPE,
    SOURCES,
    TokenSource,
    available_sources,
    build_source,
    load_word_list,
    read_token_file,
    register_source,
)

__all__ = [
    "DATE_SHAPE",
    "SOURCES",
    "InjectionConfig",
    "TokenSource",
    "available_sources",
    "build_source",
    "collision_report",
    "inject",
    "inject_many",
    "load_word_list",
    "read_token_file",
    "register_source",
    "rows_to_modify",
    "tokenizer_report",
    "undo",
]
