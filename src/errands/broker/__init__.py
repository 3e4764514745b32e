"""Brokers: the protocol, its records, and the Redis and in-memory implementations."""

from errands.broker.base import Broker, BrokerSettings

__all__ = ["Broker", "BrokerSettings"]
