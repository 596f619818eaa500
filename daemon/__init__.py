"""nearcode daemon: one process per user serving a code model to every editor."""

# One import name only: `daemon` is also python-daemon's, and a user's own folder.
if __name__ != "nearcode.daemon":
    raise ImportError(f"nearcode's daemon package is imported as nearcode.daemon, not {__name__}")
