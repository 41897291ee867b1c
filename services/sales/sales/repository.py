"""The only module of the sales service that queries its database: lookups scoped by the
caller's grants (``crm_common.scope``), keyset pages, and the rows use cases save."""
