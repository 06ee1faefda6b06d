"""The OpenAPI schema `.cog/openapi_schema.json`: it is what predict.py gives, and the local Cog
server validates with it exactly as a built image on Replicate does (422 at the HTTP edge, unknown
keys stripped). Also: the cog version is the same everywhere it is named."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import re
import subprocess
import sys
import typing

import jsonschema
import pytest

from conftest import REPO, case
from faceverify_tools import schema as generator
from faceverify_tools.inputs import data_uri

COMMITTED = REPO / ".cog" / "openapi_schema.json"


def committed() -> dict:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def test_committed_schema_is_what_predict_py_gives():
    """Fails whenever predict()'s inputs or Output change without `script/generate-schema`."""
    assert COMMITTED.read_text(encoding="utf-8") == generator.render(generator.generate()), (
        "the committed .cog/openapi_schema.json differs from predict.py: run script/generate-schema"
    )


def test_schema_agrees_with_the_predict_signature_and_output_independently():
    """A check that does not use the generator: names, order, required inputs, the threshold's
    range, and the output fields and which of them may be null."""
    import predict

    schemas = committed()["components"]["schemas"]
    parameters = list(inspect.signature(predict.Predictor.predict).parameters.values())[1:]
    properties = schemas["Input"]["properties"]
    assert list(properties) == [p.name for p in parameters]
    assert [properties[p.name]["x-order"] for p in parameters] == list(range(len(parameters)))
    input_hints = typing.get_type_hints(predict.Predictor.predict)
    # Required: neither Optional nor given a default (Cog's Input() holds None when no default is given).
    assert schemas["Input"]["required"] == [p.name for p in parameters
                                            if type(None) not in typing.get_args(input_hints[p.name]) and p.default.default is None]
    for p in parameters:
        assert properties[p.name]["description"] == p.default.description
    assert (properties["threshold"]["minimum"], properties["threshold"]["maximum"]) == (0, 1)
    assert properties["image1"] == properties["image1"] | {"type": "string", "format": "uri"}

    hints = typing.get_type_hints(predict.Output)
    output = schemas["Output"]
    assert list(output["properties"]) == list(hints)
    nullable = {name for name, hint in hints.items() if type(None) in typing.get_args(hint)}
    assert {name for name, prop in output["properties"].items() if prop.get("nullable")} == nullable
    assert output["required"] == [name for name in hints if name not in nullable]
    assert committed()["info"]["version"] == generator.sdk_version()


def test_a_changed_predictor_gives_a_different_schema(tmp_path, monkeypatch):
    """The comparison above can fail: a predictor with one more input or output field gives a
    different schema than the committed one."""
    source = (REPO / "predict.py").read_text(encoding="utf-8")
    changed = source.replace("    model_pack: str\n", "    model_pack: str\n    liveness: Optional[float]\n", 1)
    changed = changed.replace("    ) -> Output:", "        extra: int = Input(default=1, ge=0),\n    ) -> Output:", 1)
    assert changed.count("liveness") == 1 and changed.count("extra: int") == 1
    (tmp_path / "changed_predict.py").write_text(changed, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    from cog import _inspector

    info = _inspector.create_predictor("changed_predict", "Predictor")
    explicit = generator.explicit_defaults(tmp_path / "changed_predict.py", "Predictor")
    schema = generator.openapi_schema(info, explicit, generator.sdk_version())
    assert schema != committed()
    assert schema["components"]["schemas"]["Input"]["properties"]["extra"] == {
        "default": 1, "minimum": 0, "title": "Extra", "type": "integer", "x-order": 4}
    assert schema["components"]["schemas"]["Output"]["properties"]["liveness"] == {
        "nullable": True, "title": "Liveness", "type": "number"}


def test_generate_schema_check_mode_passes_in_a_fresh_process():
    """`script/generate-schema --check` (the TypeScript types are checked in test_nextjs.py)."""
    completed = subprocess.run([str(REPO / "script" / "generate-schema"), "--check", "--no-types"], check=False,
                               capture_output=True, text=True, timeout=120, env={**os.environ, "FACEVERIFY_PYTHON": sys.executable})
    assert completed.returncode == 0, completed.stderr


def test_input_and_output_schemas_are_valid_json_schemas():
    schemas = committed()["components"]["schemas"]
    for name in ("Input", "Output"):
        jsonschema.Draft202012Validator.check_schema(schemas[name])
    assert committed()["openapi"] == "3.0.2"
    assert set(committed()["paths"]) == {"/", "/health-check", "/predictions", "/predictions/{prediction_id}/cancel"}


def test_cog_version_is_the_same_everywhere():
    """cog.yaml's build.sdk_version = the dev pins of cog and coglet = what is installed = the
    schema's version; requirements.txt names neither (cog build would strip them with a warning)."""
    version = generator.sdk_version()
    dev = (REPO / "requirements-dev.txt").read_text()
    assert re.search(rf"^cog=={re.escape(version)}$", dev, re.MULTILINE) and re.search(rf"^coglet=={re.escape(version)}$", dev, re.MULTILINE)
    assert importlib.metadata.version("cog") == importlib.metadata.version("coglet") == version
    runtime = (REPO / "requirements.txt").read_text()
    assert not re.search(r"^\s*cog(let)?\s*[=<>~!]", runtime, re.MULTILINE)


# Through the real server, which loaded the schema (faceverify_tools.cogserver checks it serves it).

def photo(name: str) -> str:
    return data_uri(case(f"single-face/{name}").read_bytes())


def test_openapi_json_serves_the_committed_schema(server):
    response = server.session.get(f"{server.url}/openapi.json", timeout=10)
    assert response.status_code == 200 and response.json() == committed()
    assert "Loaded OpenAPI schema from .cog/openapi_schema.json" in server.logs()


@pytest.mark.parametrize(
    "inputs,field,message",
    [
        ({"image2": "PHOTO"}, "image1", "Field required"),
        ({"image1": "PHOTO"}, "image2", "Field required"),
        ({"image1": "PHOTO", "image2": "PHOTO", "threshold": 1.5}, "threshold", "greater than the maximum of 1"),
        ({"image1": "PHOTO", "image2": "PHOTO", "threshold": -0.1}, "threshold", "less than the minimum of 0"),
        ({"image1": "PHOTO", "image2": "PHOTO", "threshold": "0.5"}, "threshold", 'is not of type "number"'),
        ({"image1": "PHOTO", "image2": "PHOTO", "threshold": None}, "threshold", 'null is not of type "number"'),
        ({"image1": 42, "image2": "PHOTO"}, "image1", 'is not of type "string"'),
    ],
    ids=["no-image1", "no-image2", "threshold-1.5", "threshold-negative", "threshold-string", "threshold-null", "image-number"],
)
def test_invalid_inputs_get_422_at_the_http_edge(server, inputs, field, message):
    """As on Replicate: the request is refused before the model sees it, with the field named.
    An explicit null threshold is refused too (the schema marks it nullable, but coglet checks the
    null against the number type): leave threshold out for the default."""
    inputs = {key: photo("obama.jpg") if value == "PHOTO" else value for key, value in inputs.items()}
    response = server.predict(inputs)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [item["loc"] for item in detail] == [["body", "input", field]]
    assert message in detail[0]["msg"]


def test_unknown_input_keys_are_stripped(server):
    response = server.predict({"image1": photo("obama.jpg"), "image2": photo("obama2.jpg"), "extra": 1, "Threshold": 0.99})
    assert response.status_code == 200 and response.json()["status"] == "succeeded", response.text
    output = response.json()["output"]
    assert output["match"] is True and output["threshold"] != 0.99
    assert re.search(r"Stripped unknown input fields.*extra", server.logs())


def test_values_the_schema_allows_still_reach_the_model(server):
    """An integer threshold is a JSON number; the bounds are inclusive."""
    for threshold, match in ((0, True), (1, False)):
        response = server.predict({"image1": photo("obama.jpg"), "image2": photo("obama2.jpg"), "threshold": threshold})
        assert response.status_code == 200, response.text
        assert (response.json()["output"]["threshold"], response.json()["output"]["match"]) == (threshold, match)
