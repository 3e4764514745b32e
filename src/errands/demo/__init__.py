"""`errands demo`: a mixed workload that shows every lesson at work, on an embedded server."""
