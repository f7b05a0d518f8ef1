"""``spurlab defend NAME DATA --out DIR [key=value ...]``: any registered defense as a standalone command."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from spurlab.cli.app import app
from spurlab.cli.common import (
    DATA_HELP,
    EncodingOption,
    LabelColOption,
    LabelsOption,
    SplitOption,
    TextColOption,
    out_folder,
    split_list,
)

if TYPE_CHECKING:
    from spurlab.data.transform import TransformResult


@app.command("defend")
def defend_command(
    name: str = typer.Argument(..., help="A registered defense: onion, normalize, sanitize, paraphrase, ..."),
    data: str = typer.Argument(..., help=DATA_HELP),
    params: list[str] = typer.Argument(None, help="Its parameters as key=value (values read as YAML scalars), "
                                       "e.g. threshold=10 model=bundled:smollm2."),
    out: Path = typer.Option(..., "--out", parser=out_folder,
                             help="Output directory: data.<ext>, manifest.jsonl, summary.json."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo even when --out already holds this result, "
                                   "or replace the output of other inputs."),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    labels: LabelsOption = None,
    split: SplitOption = "all",
    encoding: EncodingOption = None,
) -> None:
    """Apply one defense to DATA and write the cleaned data, a manifest of what it changed and a summary.
    Nothing is written unless everything succeeds; the summary is moved into place last."""
    import yaml

    from spurlab.defend import available_defenses, get_defense
    from spurlab.errors import SpurlabError

    values = {}
    for item in params or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpurlabError(f"defense parameter {item!r}: expected key=value")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            values[key.strip()] = raw
    if name not in available_defenses():
        raise SpurlabError(f"unknown defense {name!r} (known: {', '.join(available_defenses())})")
    done = apply_defense(get_defense(name, **values), {"defense": name, "params": {k: str(v) for k, v in
                                                                                     sorted(values.items())}},
                           data, out, overwrite, text_col=text_col, label_col=label_col, labels=labels, split=split,
                           encoding=encoding)
    if done is not None:
        result, paths = done
        n_in = len(result.dataset) + len(result.dropped)
        changed = result.summary.get("n_rows_changed", len(result.manifest) - len(result.dropped))
        typer.echo(f"{name}: {changed}/{n_in} rows changed" + (f", {len(result.dropped)} dropped"
                                                               if result.dropped else ""))
        typer.echo("wrote " + ", ".join(str(p) for p in paths))


def apply_defense(defense: Any, request: dict[str, Any], data: str, out: Path, overwrite: bool, *,
                  text_col: str | None, label_col: str | None, labels: str | None, split: str,
                  encoding: str | None) -> tuple[TransformResult, list[Path]] | None:
    """Load DATA, apply ``defense`` and write its outputs into ``out`` (the request, with the data's columns and
    hash, decides whether ``out`` already holds this result: then None after one line saying so). Returns the
    result and the paths written."""
    from spurlab.data.loaders import load_table, spec_files
    from spurlab.data.transform import save_transform
    from spurlab.outputs import already_complete, frame_sha256, transform_state

    dataset = load_table(data, text_col=text_col, label_col=label_col, encoding=encoding, split=split,
                         labels=split_list(labels))
    request = {**request, "text_col": dataset.text_col, "label_col": dataset.label_col,
               "input_sha256": frame_sha256(dataset.frame)}
    if transform_state(out, request, overwrite, list(spec_files(data))) == "complete":
        typer.echo(already_complete(out))
        return None
    result = defense.apply(dataset)
    result.summary["request"] = request
    return result, list(save_transform(result, out).values())
