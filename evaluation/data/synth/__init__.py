"""Synthetic content for fixtures: grammar, languages, task content, Hub rows."""
