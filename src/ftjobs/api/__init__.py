"""The FineTuneJob API: pydantic models and constants. Pure data, no I/O."""
