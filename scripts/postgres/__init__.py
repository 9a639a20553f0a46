"""PostgreSQL domain package: what a database is beyond its contents (properties, roles)."""
