"""``python -m errands.check``: the same as ``errands check``."""

from errands.check.cli import check_command

if __name__ == "__main__":
    check_command(prog_name="errands check")
