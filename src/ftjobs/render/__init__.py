"""Pure rendering of a FineTuneJob spec into Kubernetes objects (plain dicts)."""
