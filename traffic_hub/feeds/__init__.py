"""Partner feeds: one renderer per format, pure functions from events to bytes, plus the gate."""
