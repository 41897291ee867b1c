"""The org context: departments, regions, personnel, users and sign-in, roles and data grants."""
