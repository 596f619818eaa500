"""Local insight: what became of the suggestions the user saw, kept in a private SQLite file.

`store.py` (the database), `tracker.py` (suggestion lifecycle and survival of accepted text),
`ranges.py` (positions through edits), `recorder.py` (writes off the event loop), `session.py`
(LSP glue), `summary.py` (what `nearcode stats` and `nearcode dashboard` show). Nothing here sends
anything anywhere or stores document text.
"""
