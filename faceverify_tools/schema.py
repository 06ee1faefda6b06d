"""The OpenAPI schema that `cog build` writes for predict.py, generated here: `.cog/openapi_schema.json`.

coglet loads `.cog/openapi_schema.json` from its working directory. With it, the server validates
inputs at the HTTP edge (422 for a missing or out-of-range input), strips unknown input keys and
serves `/openapi.json`, as in a built image on Replicate. Without it, it validates nothing.

The reference for the document's shape is cog's own generator (`pkg/schema/openapi_spec.go` in
replicate/cog, which `cog build` runs statically on predict.py): the same components, paths and
property keywords, in the order Go's encoder writes them (sorted keys for plain maps, declaration
order for the input and output properties and for the components and paths). The inputs and the
output are read from the predictor itself with cog's own inspector (`cog._inspector`), and whether
an `Input()` names a `default`, and which output fields have one, from predict.py's source, as the
static generator does. Only the types this generator knows are accepted; any other (unions,
choices, iterators, custom coders, an output default that is not a literal) stops it with an error
rather than writing a schema that could be wrong.

    script/generate-schema            write .cog/openapi_schema.json and the TypeScript types
    script/generate-schema --check    exit 1 when either is not what predict.py gives (what a test runs)
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

from .shared import REPO

SCHEMA_PATH = REPO / ".cog" / "openapi_schema.json"
"""Where coglet looks for the schema, relative to the server's working directory (the repository root)."""
TYPES_GENERATOR = REPO / "integrations" / "nextjs" / "scripts" / "generate-types.mjs"
"""Writes the Next.js integration's TypeScript types from SCHEMA_PATH."""


def cog_config() -> dict:
    """cog.yaml, parsed."""
    return yaml.safe_load((REPO / "cog.yaml").read_text(encoding="utf-8"))


def sdk_version() -> str:
    """cog.yaml's `build.sdk_version`: the cog version a build installs, the tests run, and the schema names."""
    return str(cog_config()["build"]["sdk_version"])


def predictor_ref() -> tuple[Path, str]:
    """cog.yaml's `predict: "file.py:Class"` as (file, class name)."""
    file_name, class_name = cog_config()["predict"].split(":")
    return REPO / file_name, class_name


def title_case(name: str) -> str:
    """cog's TitleCase: each `_`-separated part with its first letter upper-cased, joined by spaces."""
    return " ".join(part[:1].upper() + part[1:] for part in name.split("_"))


def number(value: float) -> int | float:
    """A number as Go's encoder writes a float64: 1.0 as 1."""
    return int(value) if float(value).is_integer() else value


def primitive_schema(primitive: Any) -> dict[str, Any]:
    """cog's PrimitiveType.JSONType() for the primitives this generator accepts."""
    name = primitive.name
    schemas = {
        "BOOL": {"type": "boolean"},
        "FLOAT": {"type": "number"},
        "INTEGER": {"type": "integer"},
        "STRING": {"type": "string"},
        "PATH": {"format": "uri", "type": "string"},
        "FILE": {"format": "uri", "type": "string"},
    }
    if name not in schemas:
        raise NotImplementedError(f"type {name} is not supported by this schema generator")
    return dict(schemas[name])


def field_schema(field_type: Any) -> tuple[dict[str, Any], bool]:
    """(JSON schema of a cog FieldType without nullable, whether it is optional)."""
    if field_type.union_variants is not None or field_type.coder is not None:
        raise NotImplementedError("union and custom-coder types are not supported by this schema generator")
    repetition = field_type.repetition.name
    schema = primitive_schema(field_type.primitive)
    if repetition in ("REPEATED", "OPTIONAL_REPEATED"):
        schema = {"items": schema, "type": "array"}
    return schema, repetition in ("OPTIONAL", "OPTIONAL_REPEATED")


def sorted_keys(mapping: dict[str, Any]) -> dict[str, Any]:
    """A plain Go map as its encoder writes it: keys in sorted order."""
    return {key: mapping[key] for key in sorted(mapping)}


def explicit_defaults(source: Path, class_name: str) -> dict[str, bool]:
    """For each parameter of `class_name.run` (or `.predict`) in `source`: True when its `Input(...)` names a
    default (`default=` or a first positional argument) or it has a plain default value.
    cog's static generator reads this from the source; at run time `Input()` and
    `Input(default=None)` cannot be told apart."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in ("run", "predict"):
                    params = item.args.args[1:]
                    defaults = [None] * (len(params) - len(item.args.defaults)) + list(item.args.defaults)
                    result = {}
                    for param, default in zip(params, defaults):
                        if default is None:
                            result[param.arg] = False
                        elif isinstance(default, ast.Call) and getattr(default.func, "id", getattr(default.func, "attr", "")) == "Input":
                            result[param.arg] = bool(default.args) or any(k.arg == "default" for k in default.keywords)
                        else:
                            result[param.arg] = True
                    return result
    raise LookupError(f"{class_name}.run or .predict not found in {source}")


def is_literal(node: ast.expr) -> bool:
    """Whether cog's static parser reads `node` as a default value (`parseDefaultValue` in
    pkg/schema/python/literals.go): None, a bool, number or string, a negated number, or a list,
    tuple, set or dict of those. Anything else (a call such as `field(default_factory=list)`, a
    name) it does not read, and the field stays required."""
    if isinstance(node, ast.Constant):
        return node.value is None or isinstance(node.value, (bool, int, float, str))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(is_literal(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        return all(key is not None and is_literal(key) for key in node.keys) and all(is_literal(value) for value in node.values)
    return False


def output_defaults(source: Path, class_name: str) -> set[str]:
    """The fields of the predictor's output class (the return annotation of `class_name.run` or
    `.predict`, a class defined in `source`) that have a default. cog's generator leaves such a
    field out of `required` and writes no `default` for it. A default that is not a literal is
    refused: cog would not read it as one and would keep the field required, while the class
    itself would not need it, so the schema and the predictor would disagree."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    if class_name not in classes:
        raise LookupError(f"class {class_name} not found in {source}")
    methods = [item for item in classes[class_name].body
               if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name in ("run", "predict")]
    if not methods or methods[0].returns is None:
        raise LookupError(f"{class_name}.run or .predict with a return annotation not found in {source}")
    returns = methods[0].returns
    output_name = returns.id if isinstance(returns, ast.Name) else returns.value if isinstance(returns, ast.Constant) else None
    if output_name not in classes:
        raise NotImplementedError(f"the output class {ast.unparse(returns)} must be a class defined in {source.name} for this schema generator")
    bases = [ast.unparse(base) for base in classes[output_name].bases]
    if bases not in (["BaseModel"], ["cog.BaseModel"]):
        raise NotImplementedError(f"the output class {output_name} must subclass cog's BaseModel alone for this schema generator, not {', '.join(bases)}")
    defaulted = set()
    for item in classes[output_name].body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and item.value is not None:
            if not is_literal(item.value):
                raise NotImplementedError(
                    f"output field {output_name}.{item.target.id}: its default `{ast.unparse(item.value)}` is not a literal, "
                    "which cog's schema generator does not read (it would mark the field required); give a literal default or none")
            defaulted.add(item.target.id)
    return defaulted


def predictor_info() -> Any:
    """cog's own description of the predictor (inputs in order, output type), from `cog._inspector`."""
    source, class_name = predictor_ref()
    sys.path.insert(0, str(source.parent))
    try:
        from cog import _inspector

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return _inspector.create_predictor(source.stem, class_name)
    finally:
        sys.path.remove(str(source.parent))


def input_schema(info: Any, explicit: dict[str, bool]) -> dict[str, Any]:
    """components.schemas.Input, by the rules of cog's buildInputSchema."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in info.inputs.items():
        if field.choices:
            raise NotImplementedError(f"input {name}: choices are not supported by this schema generator")
        schema, nullable = field_schema(field.type)
        prop: dict[str, Any] = {"x-order": field.order, "title": title_case(name), **schema}
        has_default = explicit.get(name, False) and (field.default is not None or nullable)
        if not has_default and not nullable:
            required.append(name)
        if has_default:
            prop["default"] = field.default
        if nullable:
            prop["nullable"] = True
        if field.description is not None:
            prop["description"] = field.description
        for key, value in (("minimum", field.ge), ("maximum", field.le)):
            if value is not None:
                prop[key] = number(value)
        for key, value in (("minLength", field.min_length), ("maxLength", field.max_length), ("pattern", field.regex)):
            if value is not None:
                prop[key] = value
        if field.deprecated:
            prop["deprecated"] = True
        properties[name] = sorted_keys(prop)
    schema = {"properties": properties, "title": "Input", "type": "object"}
    if required:
        schema["required"] = required
    return sorted_keys(schema)


def output_schema(info: Any, defaulted: set[str]) -> dict[str, Any]:
    """components.schemas.Output, by the rules of cog's SchemaType.JSONSchema for a BaseModel output:
    a field is required unless it is nullable or in `defaulted` (it has a default); no default is written."""
    if info.output.kind.name != "OBJECT" or info.output.coder is not None:
        raise NotImplementedError("only a BaseModel output is supported by this schema generator")
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field_type in info.output.fields.items():
        schema, nullable = field_schema(field_type)
        prop = {**schema, "title": title_case(name)}
        if nullable:
            prop["nullable"] = True
        elif name not in defaulted:
            required.append(name)
        properties[name] = sorted_keys(prop)
    schema = {"properties": properties, "title": "Output", "type": "object"}
    if required:
        schema["required"] = required
    return sorted_keys(schema)


def json_response(schema: dict[str, Any], description: str = "Successful Response") -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}, "description": description}


VALIDATION_ERROR = json_response({"$ref": "#/components/schemas/HTTPValidationError"}, "Validation Error")


def openapi_schema(info: Any, explicit: dict[str, bool], defaulted: set[str], version: str) -> dict[str, Any]:
    """The whole document, as cog's buildOpenAPISpec writes it for a predictor (not a trainer).
    `explicit` is from `explicit_defaults`, `defaulted` from `output_defaults`."""
    string = {"type": "string"}
    components = {
        "Input": input_schema(info, explicit),
        "Output": output_schema(info, defaulted),
        "PredictionRequest": {
            "properties": {"id": {"title": "Id", **string}, "input": {"$ref": "#/components/schemas/Input"}},
            "title": "PredictionRequest", "type": "object",
        },
        "PredictionResponse": {
            "properties": {
                "completed_at": {"format": "date-time", "title": "Completed At", **string},
                "created_at": {"format": "date-time", "title": "Created At", **string},
                "error": {"title": "Error", **string},
                "id": {"title": "Id", **string},
                "input": {"$ref": "#/components/schemas/Input"},
                "logs": {"title": "Logs", **string},
                "metrics": {"title": "Metrics", "type": "object"},
                "output": {"$ref": "#/components/schemas/Output"},
                "started_at": {"format": "date-time", "title": "Started At", **string},
                "status": {"title": "Status", **string},
                "version": {"title": "Version", **string},
            },
            "title": "PredictionResponse", "type": "object",
        },
        "Status": {
            "description": "An enumeration.", "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
            "title": "Status", "type": "string",
        },
        "HTTPValidationError": {
            "properties": {"detail": {"items": {"$ref": "#/components/schemas/ValidationError"}, "title": "Detail", "type": "array"}},
            "title": "HTTPValidationError", "type": "object",
        },
        "ValidationError": {
            "properties": {
                "loc": {"items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "title": "Location", "type": "array"},
                "msg": {"title": "Message", **string},
                "type": {"title": "Error Type", **string},
            },
            "required": ["loc", "msg", "type"], "title": "ValidationError", "type": "object",
        },
    }
    anything = json_response({})
    paths = {
        "/": {"get": {"operationId": "root__get", "responses": {"200": anything}, "summary": "Root"}},
        "/health-check": {"get": {"operationId": "healthcheck_health_check_get", "responses": {"200": anything}, "summary": "Healthcheck"}},
        "/predictions": {"post": {
            "description": "Run a single prediction on the model",
            "operationId": "predict_predictions_post",
            "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictionRequest"}}}},
            "responses": {"200": json_response({"$ref": "#/components/schemas/PredictionResponse"}), "422": VALIDATION_ERROR},
            "summary": "Predict",
        }},
        "/predictions/{prediction_id}/cancel": {"post": {
            "operationId": "cancel_predictions__prediction_id__cancel_post",
            "parameters": [{"in": "path", "name": "prediction_id", "required": True,
                            "schema": {"title": "Prediction Id", "type": "string"}}],
            "responses": {"200": anything, "422": VALIDATION_ERROR},
            "summary": "Cancel",
        }},
    }
    return {"components": {"schemas": components}, "info": {"title": "Cog", "version": version}, "openapi": "3.0.2", "paths": paths}


def generate() -> dict[str, Any]:
    """The schema for the predictor that cog.yaml names, as it is now."""
    source, class_name = predictor_ref()
    return openapi_schema(predictor_info(), explicit_defaults(source, class_name), output_defaults(source, class_name), sdk_version())


def render(schema: dict[str, Any]) -> str:
    """The file's text: two-space indented JSON (cog writes the same document compact)."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def generate_types(check: bool) -> int:
    """Run the Next.js integration's TypeScript generator on SCHEMA_PATH (with --check: compare only)."""
    command = ["node", str(TYPES_GENERATOR), *(["--check"] if check else [])]
    try:
        return subprocess.run(command, check=False, cwd=TYPES_GENERATOR.parent.parent).returncode
    except FileNotFoundError:
        print("generate-schema: `node` not found; the TypeScript types need Node 20", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when a file is out of date")
    parser.add_argument("--no-types", action="store_true", help="only the OpenAPI schema, not the TypeScript types")
    args = parser.parse_args(argv)
    text = render(generate())
    current = SCHEMA_PATH.read_text(encoding="utf-8") if SCHEMA_PATH.is_file() else None
    status = 0
    if args.check:
        if current != text:
            print(f"{SCHEMA_PATH.relative_to(REPO)} is out of date: run script/generate-schema", file=sys.stderr)
            status = 1
    elif current != text:
        SCHEMA_PATH.parent.mkdir(exist_ok=True)
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_PATH.relative_to(REPO)}", file=sys.stderr)
    if not args.no_types:
        status = generate_types(args.check) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
