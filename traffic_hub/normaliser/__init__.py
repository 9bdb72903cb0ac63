"""The normaliser: reports in, canonical events out (geo matching happens here)."""
