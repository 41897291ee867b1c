"""Queries on the sales database, one module per aggregate: the only place that queries.

Every query answering with scoped records (opportunities, activities, expenses, targets and
the figures built from them) takes the caller's visibility condition, so a record outside the
caller's scope is answered exactly like one that does not exist.
"""
