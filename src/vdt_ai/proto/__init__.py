"""Generated protobuf code for the ``vdt.ai.v1`` wire format.

Do not edit ``events_pb2.py``/``events_pb2.pyi`` by hand: change
``vdt/ai/v1/events.proto`` (beside this file, shipped in the wheel so that
consumers in other languages generate code from the exact schema) and run
``scripts/gen-proto``.
"""
