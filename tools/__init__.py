"""Tools that work with the suite from outside it, as another system would."""
