"""PyTorch integration against real torch on the CPU."""

import io
import pickle
from typing import Any

import pytest
import torch

from vdt_ai import Metric, ModelCall, VDTClient
from vdt_ai.integrations.pytorch import log_training_step, monitor_module
from vdt_ai.testing import MemoryTransport


def model() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
    )


@pytest.fixture
def client(memory: MemoryTransport) -> VDTClient:
    return VDTClient(transport=memory)


def test_forward_calls_are_logged_and_outputs_unchanged(
    client: VDTClient, memory: MemoryTransport
) -> None:
    net = model()
    x = torch.randn(16, 4)
    expected = net(x)
    handle = monitor_module(net, "mlp", client, model_version="2")
    out = net(x)
    torch.testing.assert_close(out, expected)
    (call,) = memory.events_of(ModelCall)
    assert call.model_name == "mlp" and call.model_version == "2"
    assert call.input_data["batch_size"] == 16
    assert call.input_data["inputs"][0]["shape"] == [16, 4]
    assert call.prediction["shape"] == [16, 2] and call.prediction["dtype"] == "float32"
    assert call.latency_ms is not None and call.latency_ms >= 0
    assert call.tags == {"framework": "torch", "module": "Sequential"}
    handle.remove()
    net(x)
    assert len(memory.events_of(ModelCall)) == 1  # detached


def test_state_dict_pickle_and_save_unaffected(
    client: VDTClient, tmp_path: Any
) -> None:
    net = model()
    handle = monitor_module(net, "mlp", client)
    state = net.state_dict()
    assert set(state) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    fresh = model()
    fresh.load_state_dict(torch.load(buffer))
    x = torch.randn(2, 4)
    torch.testing.assert_close(fresh(x), net(x))
    handle.remove()
    assert pickle.loads(pickle.dumps(net)) is not None


def test_internal_failure_leaves_the_output_unchanged(
    client: VDTClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    net = model()
    x = torch.randn(3, 4)
    expected = net(x)
    monkeypatch.setattr(client, "log_model_call", lambda *a, **k: 1 / 0)
    monitor_module(net, "mlp", client)
    torch.testing.assert_close(net(x), expected)
    assert client.stats().integration_errors == 1


def test_training_steps_become_metrics(
    client: VDTClient, memory: MemoryTransport
) -> None:
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    for step in range(3):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        log_training_step(
            step, loss, client, run_id="r1", lr=0.1, grad=torch.tensor(0.5)
        )
    metrics = memory.events_of(Metric)
    assert {m.name for m in metrics} == {"loss", "lr", "grad"}
    losses = [m for m in metrics if m.name == "loss"]
    assert [m.step for m in losses] == [0, 1, 2] and all(
        m.run_id == "r1" for m in losses
    )
    log_training_step(3, torch.tensor(float("nan")), client)
    assert client.stats().integration_errors == 1  # skipped, not raised


# Lightning's own code trips torch's pytree deprecations and its tips.
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_lightning_callback_logs_trainer_metrics(
    client: VDTClient, memory: MemoryTransport, tmp_path: Any
) -> None:
    import lightning.pytorch as pl

    from vdt_ai.integrations.pytorch import VDTLightningCallback

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = model()

        def training_step(self, batch: Any, batch_idx: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.TensorDataset(
        torch.randn(32, 4), torch.randint(0, 2, (32,))
    )
    loader = torch.utils.data.DataLoader(data, batch_size=8)
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[VDTLightningCallback(client, run_id="pl-1", log_every_n_steps=2)],
    )
    trainer.fit(Module(), loader)
    losses = [m for m in memory.events_of(Metric) if m.name == "loss"]
    assert losses and all(m.run_id == "pl-1" for m in losses)
    assert max(m.step for m in losses if m.step is not None) == 8  # 4 batches x 2


def test_per_row_logging_is_opt_in_and_sampled(
    client: VDTClient, memory: MemoryTransport
) -> None:
    net = model()
    x = torch.randn(50, 4)
    handle = monitor_module(net, "mlp", client, log_rows=True, row_sample_rate=0.1)
    with torch.no_grad():
        out = net(x)
    handle.remove()
    rows = [c for c in memory.events_of(ModelCall) if c.tags.get("row") == "sampled"]
    assert len(rows) == 5
    for row in rows:
        index = int((x - torch.tensor(row.input_data)).abs().sum(dim=1).argmin())
        torch.testing.assert_close(torch.tensor(row.prediction), out[index])
