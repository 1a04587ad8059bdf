"""scikit-learn: log a fit and every prediction call.

Run: ``python examples/sklearn_example.py`` (needs ``pip install 'vdt-ai[sklearn]'``).
Events go to ``VDT_AI_BOOTSTRAP_SERVERS`` if set, else to an in-memory
transport printed at the end.
"""

import os

from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from vdt_ai import VDTClient
from vdt_ai.integrations.sklearn import instrument, log_fit
from vdt_ai.testing import MemoryTransport


def main() -> None:
    memory = None if os.environ.get("VDT_AI_BOOTSTRAP_SERVERS") else MemoryTransport()
    client = VDTClient(transport=memory, service="sklearn-example")
    X, y = make_classification(n_samples=500, n_features=8, random_state=0)
    model = log_fit(
        RandomForestClassifier(n_estimators=20), X, y, client, run_id="rf-1"
    )
    model = instrument(model, "churn_model", client, model_version="1")
    model.predict(X[:100])
    model.predict_proba(X[:10])
    client.close()
    print(client.stats())
    for event in memory.events if memory is not None else []:
        print(event.event_type.value, event.model_dump(mode="json", exclude={"source"}))


if __name__ == "__main__":
    main()
