"""PostgreSQL plumbing: connection strings, client binaries, snapshots, replication state and the fence;
what a database is beyond its contents (properties, roles) and the copies restores keep."""
