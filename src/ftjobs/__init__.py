"""ftjobs: fine-tuning jobs on Kubernetes from one declarative FineTuneJob spec."""

__version__ = "0.1.0"
