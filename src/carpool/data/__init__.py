"""Database access: the engine, the unit of work, migrations and the embedded server."""
