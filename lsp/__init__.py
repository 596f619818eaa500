"""nearcode language server: documents, completion policy, post-processing, daemon client."""
