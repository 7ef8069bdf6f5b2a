"""Plotting: one style for every figure; figures are computed elsewhere and only drawn here."""
