"""The Lille demo: closures posted by demo teams, and recorded sources replayed as of today."""
