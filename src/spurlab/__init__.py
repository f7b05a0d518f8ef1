"""spurlab: audit LoRA finetuning against Seamless Spurious Token Injection (SSTI)."""

__version__ = "0.1.0"
