"""PostgreSQL plumbing: connection strings, client binaries, snapshots, replication state and the fence."""
