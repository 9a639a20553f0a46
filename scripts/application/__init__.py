"""The application around a recovery: stop and start it (:mod:`.hooks`), then check it works (:mod:`.smoke`).

Both read only the contract's ``databases[].application`` and ``databases[].smokeChecks``.
"""
