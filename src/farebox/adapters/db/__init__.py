"""SQLAlchemy storage: tables, engine set-up, unit of work and repositories."""
