"""PyTorch: monitor forward calls and log training steps.

Run: ``python examples/pytorch_example.py`` (needs ``pip install 'vdt-ai[torch]'``).
Events go to an in-memory transport printed at the end (set
``VDT_AI_BOOTSTRAP_SERVERS`` to send them to Kafka instead).
"""

import os

import torch

from vdt_ai import VDTClient
from vdt_ai.integrations.pytorch import log_training_step, monitor_module
from vdt_ai.testing import MemoryTransport


def main() -> None:
    memory = None if os.environ.get("VDT_AI_BOOTSTRAP_SERVERS") else MemoryTransport()
    client = VDTClient(transport=memory, service="torch-example")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    for step in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        log_training_step(step, loss, client, run_id="torch-demo", lr=0.1)
    handle = monitor_module(net, "mlp", client)
    with torch.no_grad():
        net(x[:16])
    handle.remove()
    client.close()
    print(client.stats())
    for event in memory.events if memory is not None else []:
        print(event.event_type.value, event.model_dump(mode="json", exclude={"source"}))


if __name__ == "__main__":
    main()
