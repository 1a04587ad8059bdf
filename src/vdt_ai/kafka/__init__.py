"""Kafka delivery: the shared producer, the transport and the spool replayer.

confluent_kafka is imported only when this package is used.
"""
