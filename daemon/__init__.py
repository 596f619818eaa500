"""nearcode daemon: one process per user serving a code model to every editor."""

__version__ = "0.1.0"
