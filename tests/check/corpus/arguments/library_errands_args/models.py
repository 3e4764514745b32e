# ruff: noqa
# mypy: ignore-errors
from dataclasses import dataclass

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"


@dataclass
class Loan:
    book_id: int
    member_id: int
