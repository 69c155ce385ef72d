"""CLI subcommands, one module each (see minisnn.cli)."""
