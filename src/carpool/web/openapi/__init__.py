"""The OpenAPI 3.1 description of carpool (`/openapi.json`) and its offline docs UI (`/docs`)."""
