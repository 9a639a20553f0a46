"""Thin command modules: one per verb (flags, confirmation, output) over the domain packages."""
