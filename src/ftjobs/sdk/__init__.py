"""The Python SDK the CLI calls: load/validate specs, render, submit, watch, run locally."""
