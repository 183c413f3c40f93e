"""Data preparation for the trainer: load (s3:// or file://, JSONL/Parquet/CSV), clean,
format into each task's canonical columns, split deterministically, check leakage, report.

`prepare_data(spec, rank=, world_size=, storage_options=)` is the entry point; bad data
raises `DataError` with the file, row and field in the message.
"""

from ftjobs.trainer.data.errors import DataError
from ftjobs.trainer.data.prepare import PreparedData, prepare_data
from ftjobs.trainer.data.report import add_token_lengths

__all__ = ["DataError", "PreparedData", "add_token_lengths", "prepare_data"]
