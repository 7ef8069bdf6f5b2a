"""The training contract (DESIGN.md): one routine that every study's training step calls."""
