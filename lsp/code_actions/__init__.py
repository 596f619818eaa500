"""Code actions: docstrings and unit tests for the symbol under the cursor, streamed from the daemon."""
