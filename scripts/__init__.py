"""Pilotlight's companion tools: backup, verify, restore, cutover, failback, drills and the sandbox."""
