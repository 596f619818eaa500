"""Prompt construction: templates from prompts/ and token budgets."""
