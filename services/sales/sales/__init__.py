"""The sales bounded context of the CRM."""
