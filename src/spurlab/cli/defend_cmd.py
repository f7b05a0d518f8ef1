"""``spurlab defend NAME DATA --out DIR [key=value ...]``: any registered defense as a standalone command."""

from __future__ import annotations

from pathlib import Path

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

    from spurlab.data.loaders import load_table, spec_files
    from spurlab.data.transform import save_transform
    from spurlab.defend import available_defenses, get_defense
    from spurlab.errors import SpurlabError
    from spurlab.outputs import already_complete, frame_sha256, transform_state

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
    defense = get_defense(name, **values)
    dataset = load_table(data, text_col=text_col, label_col=label_col, encoding=encoding, split=split,
                         labels=split_list(labels))
    request = {"defense": name, "params": {k: str(v) for k, v in sorted(values.items())},
               "text_col": dataset.text_col, "label_col": dataset.label_col,
               "input_sha256": frame_sha256(dataset.frame)}
    if transform_state(out, request, overwrite, list(spec_files(data))) == "complete":
        typer.echo(already_complete(out))
        return
    result = defense.apply(dataset)
    result.summary["request"] = request
    paths = save_transform(result, out)
    changed = result.summary.get("n_rows_changed", len(result.manifest))
    typer.echo(f"{name}: {changed}/{len(dataset)} rows changed")
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
