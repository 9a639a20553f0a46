"""The local sandbox: moto (AWS emulator) behind per-region proxies, real PostgreSQL 15, a loopback DNS server.

What is real and what is emulated is listed in docs/sandbox.md. Entry points:
``pilotlight sandbox up|down|status`` (:mod:`scripts.commands.sandbox`) and the Python API in
:mod:`scripts.sandbox.control` that drills and tests use.
"""
