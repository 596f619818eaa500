"""Context for completions: what the prompt holds beyond the text around the cursor.

`index_api` is what this package needs from the workspace index; `identifiers` and `ranking` score
text by identifier overlap; `retrieval` gathers candidates under a deadline; `selection` keeps the
chosen set stable while the user types in one place; `assembler` ties them together per request.
"""
