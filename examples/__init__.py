"""Runnable examples that the docs reference; run each from the repository root.

Each example starts a worker with ``python -m errands worker examples.<module>:app``, so this
folder is a package importable from the repository root.
"""
