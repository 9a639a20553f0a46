"""Point-in-time recovery: restore a database to any second of its automated backups, in either region."""
