"""The field's attacks and defenses side by side: an arena spec expanded into a sweep, and its comparison."""

from spurlab.arena.spec import ArenaSpec, load_arena, sweep_spec
from spurlab.arena.table import cell_rows, comparison, write_arena

__all__ = ["ArenaSpec", "cell_rows", "comparison", "load_arena", "sweep_spec", "write_arena"]
