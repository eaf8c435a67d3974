"""The HTTP face of carpool: the app factory, middleware, errors and JSON helpers."""
