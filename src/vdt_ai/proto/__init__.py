"""Generated protobuf code for the ``vdt.ai.v1`` wire format.

Do not edit ``events_pb2.py``/``events_pb2.pyi`` by hand: change
``proto/vdt/ai/v1/events.proto`` and run ``scripts/gen-proto``.
"""
