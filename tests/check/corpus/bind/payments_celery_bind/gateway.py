# ruff: noqa
# mypy: ignore-errors
class GatewayTimeout(Exception):
    pass


class Gateway:
    def capture(self, order_id):
        print(order_id)


gateway = Gateway()
