"""HTTP/JSON gateway of the CRM suite."""
