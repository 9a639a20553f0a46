"""The backup vault: object layout, the encrypted streaming pipeline, and the backup, restore and verify engines."""
