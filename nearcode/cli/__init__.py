"""The `nearcode` command: the one place that may import both the daemon and the language server."""
