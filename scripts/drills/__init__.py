"""Drills: the engine, the heartbeat, the reports and the scenarios."""
