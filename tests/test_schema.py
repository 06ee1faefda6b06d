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

import pytest
from openapi_spec_validator import OpenAPIV30SpecValidator, validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

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
    defaulted = generator.output_defaults(tmp_path / "changed_predict.py", "Predictor")
    schema = generator.openapi_schema(info, explicit, defaulted, generator.sdk_version())
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


def test_committed_schema_is_valid_openapi_3_0():
    """Checked against the OpenAPI 3.0 schema itself (`cog build` checks with kin-openapi), so
    `nullable`, `x-order` and the 3.0 forms of every keyword are checked too."""
    validate(committed(), cls=OpenAPIV30SpecValidator)
    assert committed()["openapi"] == "3.0.2"
    assert set(committed()["paths"]) == {"/", "/health-check", "/predictions", "/predictions/{prediction_id}/cancel"}


@pytest.mark.parametrize("change", [{"nullable": "yes"}, {"type": ["number", "null"]}, {"minimum": "0"}],
                         ids=["nullable-not-boolean", "json-schema-2020-null-type", "minimum-not-a-number"])
def test_the_openapi_check_refuses_what_openapi_3_0_does_not_allow(change):
    """The check above can fail: a threshold written as JSON Schema 2020 would write it, or with
    a wrong keyword type, is refused."""
    broken = committed()
    broken["components"]["schemas"]["Input"]["properties"]["threshold"].update(change)
    with pytest.raises(OpenAPIValidationError):
        validate(broken, cls=OpenAPIV30SpecValidator)


# What `cog build` writes for the constructs predict.py uses, written out by hand from cog's Go
# generator (replicate/cog pkg/schema: openapi_spec.go buildInputSchema, schema_type.go coreSchema,
# types.go PrimitiveType.JSONType) and compared as text, so key order counts: Go's encoder writes a
# property's keys sorted, and the properties in declaration order.
HAND_WRITTEN_INPUT = {
    # Path: a string with format uri; x-order is the position in the signature; no default: required.
    "image1": {"format": "uri", "title": "Image1", "type": "string", "x-order": 0},
    "image2": {"format": "uri", "title": "Image2", "type": "string", "x-order": 1},
    # Optional[float] with Input(default=None, ge=0.0, le=1.0): nullable with a null default, not
    # required; the bounds as Go writes float64 1.0 (1).
    "threshold": {"default": None, "maximum": 1, "minimum": 0, "nullable": True, "title": "Threshold", "type": "number", "x-order": 2},
    "require_selfie_quality": {"default": False, "title": "Require Selfie Quality", "type": "boolean", "x-order": 3},
}
HAND_WRITTEN_OUTPUT = {
    "match": {"title": "Match", "type": "boolean"},
    "similarity": {"nullable": True, "title": "Similarity", "type": "number"},
    "image1_face_box": {"items": {"type": "number"}, "nullable": True, "title": "Image1 Face Box", "type": "array"},
    "image1_quality_issues": {"items": {"type": "string"}, "title": "Image1 Quality Issues", "type": "array"},
    "model_pack": {"title": "Model Pack", "type": "string"},
}


def text(value: object) -> str:
    return json.dumps(value)


def test_generator_writes_what_cog_build_writes_for_the_constructs_predict_py_uses():
    schemas = generator.generate()["components"]["schemas"]
    inputs = schemas["Input"]
    assert list(inputs) == ["properties", "required", "title", "type"] and (inputs["title"], inputs["type"]) == ("Input", "object")
    assert inputs["required"] == ["image1", "image2"]
    assert list(inputs["properties"]) == list(HAND_WRITTEN_INPUT)
    for name, expected in HAND_WRITTEN_INPUT.items():
        written = {key: value for key, value in inputs["properties"][name].items() if key != "description"}
        assert text(written) == text(expected), name  # descriptions: the signature test above

    output = schemas["Output"]
    assert list(output) == ["properties", "required", "title", "type"] and (output["title"], output["type"]) == ("Output", "object")
    for name, expected in HAND_WRITTEN_OUTPUT.items():
        assert text(output["properties"][name]) == text(expected), name
    assert output["required"] == ["match", "threshold", "image1_face_count", "image2_face_count",
                                  "image1_quality_issues", "image2_quality_issues", "model_pack"]


SMALL_PREDICTOR = """
from typing import Optional

from cog import BaseModel, BasePredictor, Input, Path


class Result(BaseModel):
    label: str
    count: int
    note: Optional[str]
    score: float = 0.5
    region: Optional[str] = None
    kind: str = "face"


class Predictor(BasePredictor):
    def predict(
        self,
        photo: Path = Input(description="A photo."),
        limit: Optional[float] = Input(default=None, ge=0.0, le=1.0),
        tries: int = Input(default=3),
    ) -> Result:
        return Result(label="x", count=1, note=None)
"""


def small_predictor_schema(tmp_path, monkeypatch, source: str) -> dict:
    """The generator's schema for `source`, written to a module of its own."""
    module = f"small_predict_{len(list(tmp_path.iterdir()))}"
    (tmp_path / f"{module}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    from cog import _inspector

    info = _inspector.create_predictor(module, "Predictor")
    path = tmp_path / f"{module}.py"
    return generator.openapi_schema(info, generator.explicit_defaults(path, "Predictor"),
                                    generator.output_defaults(path, "Predictor"), "0.0.0")["components"]["schemas"]


def test_output_fields_with_a_default_are_not_required_as_in_cog(tmp_path, monkeypatch):
    """cog's schema_type.go: an output field is required unless it is nullable or has a default,
    and no default is written for it."""
    schemas = small_predictor_schema(tmp_path, monkeypatch, SMALL_PREDICTOR)
    assert text(schemas["Output"]) == text({
        "properties": {
            "label": {"title": "Label", "type": "string"},
            "count": {"title": "Count", "type": "integer"},
            "note": {"nullable": True, "title": "Note", "type": "string"},
            "score": {"title": "Score", "type": "number"},
            "region": {"nullable": True, "title": "Region", "type": "string"},
            "kind": {"title": "Kind", "type": "string"},
        },
        "required": ["label", "count"], "title": "Output", "type": "object",
    })
    assert text(schemas["Input"]) == text({
        "properties": {
            "photo": {"description": "A photo.", "format": "uri", "title": "Photo", "type": "string", "x-order": 0},
            "limit": {"default": None, "maximum": 1, "minimum": 0, "nullable": True, "title": "Limit", "type": "number", "x-order": 1},
            "tries": {"default": 3, "title": "Tries", "type": "integer", "x-order": 2},
        },
        "required": ["photo"], "title": "Input", "type": "object",
    })


def test_an_output_default_cog_would_not_read_is_refused(tmp_path, monkeypatch):
    """`field(default_factory=list)` is a default to the dataclass but not to cog's static parser,
    which would mark the field required: the generator stops rather than guess."""
    source = SMALL_PREDICTOR.replace("from typing import Optional\n", "from dataclasses import field\nfrom typing import Optional\n")
    source = source.replace('    kind: str = "face"\n', '    kind: str = "face"\n    tags: list[str] = field(default_factory=list)\n')
    assert source.count("default_factory") == 1
    with pytest.raises(NotImplementedError, match=r"Result\.tags: its default `field\(default_factory=list\)` is not a literal"):
        small_predictor_schema(tmp_path, monkeypatch, source)


def test_an_output_class_with_fields_from_another_class_is_refused(tmp_path, monkeypatch):
    """Defaults declared in a parent class are not read here, so such an output stops the generator."""
    source = SMALL_PREDICTOR.replace("class Result(BaseModel):", "class Base(BaseModel):\n    extra: int = 1\n\n\nclass Result(Base):")
    with pytest.raises(NotImplementedError, match="must subclass cog's BaseModel alone"):
        small_predictor_schema(tmp_path, monkeypatch, source)


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
