"""The in-container fine-tuning recipe (torch, DeepSpeed, transformers, datasets live here only)."""
