"""Alert rules and their versions, the people read model, preferences, the inbox and the keys
that keep an alert from firing twice."""

from __future__ import annotations
