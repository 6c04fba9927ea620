"""Storage: tables (SQLAlchemy Core), migrations (Alembic) and queries. The caller owns the transaction."""
