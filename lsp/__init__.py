"""nearcode language server: documents, completion policy, post-processing, daemon client."""

# One import name only (see nearcode/__init__.py).
if __name__ != "nearcode.lsp":
    raise ImportError(f"nearcode's language server package is imported as nearcode.lsp, not {__name__}")
