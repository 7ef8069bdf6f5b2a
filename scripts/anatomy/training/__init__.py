"""The training contract (docs/design.md): ``fit_with_contract`` and its parts (the coreset selection's own loop
reuses the parts)."""
