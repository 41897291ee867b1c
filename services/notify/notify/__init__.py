"""The notify bounded context of the CRM."""
