"""Infrastructure shared by every CRM service. Holds no domain model."""
