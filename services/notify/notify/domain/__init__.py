"""The notify domain: rules and state machines in plain Python (no Nameko, SQLAlchemy or I/O),
called directly by unit tests."""
