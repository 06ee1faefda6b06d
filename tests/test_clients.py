"""The Replicate Python client (replicate 1.0.7, requirements-dev.txt) against the real local Cog server.

`replicate.Client(...).run("owner/model:version", input=...)` runs unchanged; only where
Replicate's HTTP API differs from a Cog server's is the traffic adapted, inside this test, by an
httpx transport (`ReplicateApiOnCog`) between the client and the server:

- the `/v1` prefix: Replicate serves `/v1/predictions`, a Cog server `/predictions`;
- `model` and `version`: Replicate adds both to every prediction it returns and the client
  requires them; a Cog server does not, so the transport adds them;
- the version lookup: for an "owner/model:version" reference the client first fetches
  `/v1/models/{owner}/{model}/versions/{version}`, which on Replicate holds the OpenAPI schema that
  cog built; a Cog server has no such route, so the transport answers it with the server's own
  `/openapi.json`.

The request body, the server's validation and answer (including its 422), and the client's own
handling of them are untouched. Files are sent with the client's `file_encoding_strategy="base64"`
(data URIs): by default the client uploads them through Replicate's Files API, which a Cog server
does not have.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
import replicate
from replicate.exceptions import ReplicateError

from conftest import case

MODEL = "local/faceverify"
VERSION = "local-test-version"


class ReplicateApiOnCog(httpx.BaseTransport):
    """Replicate's API paths and prediction fields on top of a Cog server; nothing else changes."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(f"{request.method} {path}")
        if path == f"/v1/models/{MODEL}/versions/{VERSION}":
            schema = self.forward(request, "/openapi.json")
            schema.read()
            version = {"id": VERSION, "created_at": datetime.now(UTC).isoformat(),
                       "cog_version": schema.json()["info"]["version"], "openapi_schema": schema.json()}
            return httpx.Response(schema.status_code, json=version)
        if not path.startswith("/v1/"):
            return httpx.Response(404, json={"detail": f"not a Replicate API path: {path}"})
        response = self.forward(request, path.removeprefix("/v1"))
        if path.startswith("/v1/predictions") and response.headers.get("content-type", "").startswith("application/json"):
            response.read()
            body = response.json()
            if response.is_success and isinstance(body, dict):
                body.setdefault("model", MODEL)
                body.setdefault("version", VERSION)
            return httpx.Response(response.status_code, json=body)
        return response

    def forward(self, request: httpx.Request, path: str) -> httpx.Response:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"content-length"]
        return self.inner.handle_request(httpx.Request(request.method, request.url.copy_with(path=path),
                                                       headers=headers, content=request.read()))

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def client(server):
    transport = ReplicateApiOnCog()
    client = replicate.Client(api_token="local", base_url=server.url, transport=transport)
    client.adapted = transport  # what the client asked for, for the tests to check
    yield client
    assert not [p for p in transport.paths if "/files" in p], "no upload may be attempted"
    transport.close()


def run(client, **input):
    return client.run(f"{MODEL}:{VERSION}", input=input, use_file_output=False, file_encoding_strategy="base64")


def photo(name: str):
    return case(name).open("rb")


def in_process(verifier, name1: str, name2: str, threshold: float | None = None):
    """The same comparison made in this process, for the client's answer to equal."""
    return verifier.verify(case(name1).read_bytes(), case(name2).read_bytes(), threshold)


def test_same_person_with_open_files(client, verifier):
    with photo("single-face/obama.jpg") as image1, photo("single-face/obama2.jpg") as image2:
        output = run(client, image1=image1, image2=image2)
    assert output["match"] is True and output["error_code"] is None
    expected = in_process(verifier, "single-face/obama.jpg", "single-face/obama2.jpg")
    assert (output["similarity"], output["threshold"]) == (expected.similarity, expected.threshold)
    assert client.adapted.paths == ["POST /v1/predictions", f"GET /v1/models/{MODEL}/versions/{VERSION}"]


def test_different_people(client):
    with photo("single-face/obama.jpg") as image1, photo("single-face/biden.jpg") as image2:
        output = run(client, image1=image1, image2=image2)
    assert output["match"] is False and output["error_code"] is None
    assert output["similarity"] < output["threshold"]


def test_selfie_with_no_face(client):
    with photo("single-face/obama.jpg") as image1, photo("no-face/dogs.jpg") as image2:
        output = run(client, image1=image1, image2=image2)
    assert (output["match"], output["similarity"], output["error_code"]) == (False, None, "image2_no_face")


def test_threshold_given_and_unknown_input_stripped(client, verifier):
    with photo("single-face/obama.jpg") as image1, photo("single-face/obama2.jpg") as image2:
        output = run(client, image1=image1, image2=image2, threshold=0.9, not_an_input="ignored")
    expected = in_process(verifier, "single-face/obama.jpg", "single-face/obama2.jpg", 0.9)
    assert (output["threshold"], output["match"], output["similarity"]) == (0.9, False, expected.similarity)
    assert expected.similarity < 0.9


@pytest.mark.parametrize("threshold", [1.5, "0.5", None])
def test_bad_threshold_is_the_clients_error_from_a_422(client, threshold):
    with photo("single-face/obama.jpg") as image1, photo("single-face/obama2.jpg") as image2, pytest.raises(ReplicateError) as raised:
        run(client, image1=image1, image2=image2, threshold=threshold)
    assert raised.value.status == 422
    assert "threshold" in json.dumps(raised.value.to_dict())
