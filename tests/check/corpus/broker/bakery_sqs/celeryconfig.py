# ruff: noqa
# mypy: ignore-errors
broker_url = "sqs://"
broker_transport_options = {"region": "eu-west-1", "visibility_timeout": 3600}
task_acks_late = True
task_time_limit = 300
