"""Subcommands of the ``shift`` console script that need only the pure core."""
