"""The `ftjobs` command line (typer + rich) over the SDK."""
