"""Org rules in plain Python: no Nameko, no database."""
