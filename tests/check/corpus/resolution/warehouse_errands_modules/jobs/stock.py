# ruff: noqa
# mypy: ignore-errors
from ..queueing import app as errands_app


@errands_app.task(queue="stock")
def recount(sku: str, since) -> int:
    return 0


@errands_app.task(queue="stock")
def recount_all(skus: list[str]) -> int:
    from . import stock

    first = stock.recount.delay(skus[0], None)
    return first.get(timeout=10)  # expect: ERR301
