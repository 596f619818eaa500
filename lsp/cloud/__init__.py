"""Cloud hand-off (only on request, never in local-only mode): redaction, deny list, audit log, client."""
