"""The corpus under ``corpus/`` is data the checker reads, never tests to collect or import."""

collect_ignore_glob = ["corpus/*"]
