"""Every request body schema of the OpenAPI document carries an example, each
example validates against its model, and the models serialise as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from fastapi.testclient import TestClient

from domain.orders import Order
from starters.api.app import create_app
from starters.api.openapi_examples import (
    EXAMPLES,
    ORDER,
    _schema_names,
    request_schema_names,
)
from starters.auth import ApiKeyStore
from workers.codec import EncryptionCodec, Keyring
from workers.settings import Settings


def _document(tmp_path: Path) -> dict[str, Any]:
    app = create_app(
        Settings(_env_file=None, STEWARD_DATA_DIR=tmp_path),
        client=cast(Any, None),
        pool=cast(Any, None),
        api_keys=ApiKeyStore.from_mapping({}),
        codec=EncryptionCodec(Keyring.generate()),
    )
    return cast(dict[str, Any], TestClient(app).get("/openapi.json").json())


def test_every_request_schema_has_an_example_that_validates(tmp_path: Path) -> None:
    document = _document(tmp_path)
    schemas = document["components"]["schemas"]
    names = request_schema_names(document)
    assert len(names) >= 20
    missing = sorted(name for name in names if not schemas[name].get("examples"))
    assert missing == []
    models = {
        schema_name: model for _f, model, _b in EXAMPLES for schema_name in _schema_names(model)
    }
    for name in names:
        models[name].model_validate(schemas[name]["examples"][0])


def test_examples_leave_the_models_serialisation_alone() -> None:
    order = Order.model_validate(ORDER)
    dumped = order.model_dump(mode="json")
    assert "examples" not in dumped
    assert Order.model_validate(dumped) == order
    assert "examples" not in Order.model_json_schema()
