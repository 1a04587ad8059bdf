"""The fault tests use the integration tests' broker fixtures."""

from ..integration.conftest import broker, restore_broker  # noqa: F401
