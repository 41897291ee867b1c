"""Demo data sets, one module per service (``python -m demo.customer``); not part of any
service's package or image."""
