"""Connectors: one module per source kind (fetch + pure parse), run by one shared runner."""
