"""Datasets: sources (embedded, download, local files) -> the workflow's data files."""
