"""Alembic migrations of the service database (run by ``serving.db.upgrade`` / ``doudi db upgrade``)."""
