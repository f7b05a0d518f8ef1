"""Figures and Markdown summaries built from results."""
