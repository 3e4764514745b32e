# ruff: noqa
# mypy: ignore-errors
import datetime
import decimal
import uuid
from pathlib import Path

from .jobs import archive, charge_fine, remind, renew
from .models import Book, Loan


def overdue(session, book_id: int, member_id: int) -> None:
    book = session.get(Book, book_id)
    due = datetime.datetime.now() + datetime.timedelta(days=14)
    remind.delay(book.id, due)  # expect: ERR201
    charge_fine.delay(member_id, decimal.Decimal("2.50"))  # expect: ERR201
    renew.apply_async(args=[Loan(book_id, member_id)])  # expect: ERR201
    archive.delay(Path("/srv/archive") / "loans")  # expect: ERR201
    archive.delay({uuid.uuid4()})  # expect: ERR201


def notify(book: Book) -> None:
    remind.delay(book, due=None)  # expect: ERR201
