"""Benchmarks of errands against its peers: ``python -m benchmarks.run`` (``make bench``)."""
