# ruff: noqa
# mypy: ignore-errors
def start_oven(batch_id: int) -> None:
    print("oven", batch_id)
