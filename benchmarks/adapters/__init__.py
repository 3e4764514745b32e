"""One small module per system: its task bodies, how to enqueue, and how to start its workers.

Every adapter runs in its own system's virtual environment (errands in the project's ``.venv``,
the peers in ``benchmarks/.venv-peers``, arq and SAQ in environments of their own inside it
because their redis-py pins clash with the others'), so the driver never imports them: it asks
``python -m benchmarks.producer SYSTEM ...`` in the right environment instead.
"""

#: system name -> (module, virtual environment: "project", "peers", "arq" or "saq")
ADAPTERS: dict[str, tuple[str, str]] = {
    "errands": ("benchmarks.adapters.errands_adapter", "project"),
    # The same with three no-op middlewares: what the seam costs, read against the row above.
    "errands-mw": ("benchmarks.adapters.errands_adapter", "project"),
    "celery": ("benchmarks.adapters.celery_adapter", "peers"),
    "rq": ("benchmarks.adapters.rq_adapter", "peers"),
    "rq-simple": ("benchmarks.adapters.rq_adapter", "peers"),
    "dramatiq": ("benchmarks.adapters.dramatiq_adapter", "peers"),
    "huey": ("benchmarks.adapters.huey_adapter", "peers"),
    "arq": ("benchmarks.adapters.arq_adapter", "arq"),
    "taskiq": ("benchmarks.adapters.taskiq_adapter", "peers"),
    "saq": ("benchmarks.adapters.saq_adapter", "saq"),
    "streaq": ("benchmarks.adapters.streaq_adapter", "peers"),
    # Not a task queue: a bare redis-py loop, the floor every row reads against.
    "floor": ("benchmarks.adapters.floor_adapter", "project"),
}
