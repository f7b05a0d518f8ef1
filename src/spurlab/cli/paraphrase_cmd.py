"""``spurlab paraphrase``: rewrite every row with an LLM (the paper's defense) and measure token survival."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from spurlab.cli.app import app
from spurlab.cli.common import (
    DATA_HELP,
    EncodingOption,
    LabelColOption,
    LabelsOption,
    SplitOption,
    TextColOption,
    number,
    out_folder,
    split_list,
)
from spurlab.defend.paraphrase import DEFAULT_MODEL, DEFAULT_PROMPT


@app.command("paraphrase")
def paraphrase_command(
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", parser=out_folder,
                             help="Output directory: data.<ext>, manifest.jsonl, summary.json."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", help="Causal LM: hub name, folder or bundled:smollm2 "
                              "(the paper: meta-llama/Meta-Llama-3-8B-Instruct)."),
    prompt: str = typer.Option(DEFAULT_PROMPT, "--prompt", help="Instruction with {text} where the row goes."),
    no_chat_template: bool = typer.Option(False, "--no-chat-template", help="Send the prompt as plain text "
                                          "even when the tokenizer has a chat template."),
    temperature: float = typer.Option(0.7, "--temperature", parser=number(0),
                                      help="Sampling temperature (0 = greedy)."),
    top_p: float = typer.Option(0.9, "--top-p", parser=number(0, 1, low_open=True),
                                help="Nucleus sampling mass, in (0, 1]."),
    max_new_tokens: int = typer.Option(150, "--max-new-tokens", min=1, help="Most tokens generated per row."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the sampling (per batch: seed + batch index)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Rows generated together (left-padded)."),
    max_rows: int = typer.Option(None, "--max-rows", min=1,
                                 help="Paraphrase only the first N rows (the rest are kept)."),
    threads: int = typer.Option(None, "--threads", min=1, help="torch CPU threads."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda[:N] or mps."),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help="Also load pickle checkpoints (only from "
                                      "sources you trust; they can run code)."),
    manifest: Path = typer.Option(None, "--manifest", help="Injection manifest.jsonl of DATA: adds the share "
                                  "of poisoned rows whose planted token survived to the summary."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo even when --out already holds this result, "
                                   "or replace the output of other inputs."),
    text_col: TextColOption = None,
    label_col: LabelColOption = None,
    labels: LabelsOption = None,
    split: SplitOption = "all",
    encoding: EncodingOption = None,
) -> None:
    """Paraphrase every row with a causal LM and write the new data, a manifest of changed rows and a summary.

    Nothing is written unless everything succeeds; the summary is moved into place last.
    """
    from spurlab.data.loaders import load_table, spec_files
    from spurlab.data.transform import read_manifest, save_transform
    from spurlab.defend.base import get_defense
    from spurlab.defend.paraphrase_survival import survival
    from spurlab.errors import SpurlabError
    from spurlab.outputs import already_complete, file_sha256, frame_sha256, transform_state

    defense = get_defense("paraphrase", model=model, prompt=prompt, chat_template=not no_chat_template,
                          temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed,
                          batch_size=batch_size, max_rows=max_rows, threads=threads, device=device,
                          allow_pickle=allow_pickle)
    if manifest is not None and not manifest.is_file():
        raise SpurlabError(f"injection manifest not found: {manifest}")
    records = read_manifest(manifest) if manifest is not None else None
    dataset = load_table(data, text_col=text_col, label_col=label_col, encoding=encoding, split=split,
                         labels=split_list(labels))
    if records is not None:  # check the manifest fits the data before the (slow) generation
        survival(records, dataset.texts)
    request = {**defense.params(), "manifest_sha256": file_sha256(manifest) if manifest is not None else None,
               "text_col": dataset.text_col, "label_col": dataset.label_col,
               "input_sha256": frame_sha256(dataset.frame)}
    inputs = [*spec_files(data), *([manifest] if manifest is not None else [])]
    if transform_state(out, request, overwrite, inputs) == "complete":
        typer.echo(already_complete(out))
        return
    result = defense.apply(dataset)
    result.summary["request"] = request
    if records is not None:
        report = survival(records, result.dataset.texts, rows=[r["row"] for r in result.manifest])
        result.summary["survival"] = {k: v for k, v in report.items() if k != "rows"}
        result.summary["survival_rows"] = report["rows"]
    paths = save_transform(result, out)
    s = result.summary
    console = Console()
    console.print(Text(f"{s['dataset']}: paraphrased {s['n_rows_paraphrased']}/{s['n_rows']} rows with "
                       f"{model} ({s['seconds_per_row']} s/row); {s['n_rows_changed']} changed, "
                       f"{s['n_fallback']} fell back {s['fallback_reasons']}"))
    if records is not None:
        sv = s["survival"]
        share = "-" if sv["share_survived"] is None else f"{sv['share_survived']:.1%}"
        console.print(Text(f"planted token survived in {sv['n_survived']}/{sv['n_poisoned']} poisoned rows "
                           f"({share}); its shape in {sv['n_shape_survived']}/{sv['n_with_shape']}"))
    console.print(Text("wrote " + ", ".join(str(p) for p in paths.values())))
