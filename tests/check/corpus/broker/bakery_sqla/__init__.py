# ruff: noqa
# mypy: ignore-errors
"""Bakery: orders and oven batches."""
