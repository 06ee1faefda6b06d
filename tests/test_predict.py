"""The Cog adapter in-process: Predictor.setup() and predict() as Cog calls them."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from cog import Path as CogPath

import predict
from conftest import TEST_PACK, case


@pytest.fixture(scope="module")
def predictor():
    instance = predict.Predictor()
    instance.setup(weights=str(TEST_PACK))
    return instance


def cog_upload(source: Path) -> CogPath:
    """A file where Cog puts downloaded inputs: the temporary folder."""
    handle = tempfile.NamedTemporaryFile(suffix=source.suffix, delete=False)
    with handle:
        handle.write(source.read_bytes())
    return CogPath(handle.name)


def test_uploaded_files_are_compared(predictor):
    first, second = cog_upload(case("single-face/obama.jpg")), cog_upload(case("single-face/obama2.jpg"))
    try:
        output = predictor.compare(image1=first, image2=second, threshold=None)
    finally:
        first.unlink(), second.unlink()
    assert output.match is True and output.model_pack == "scrfd2.5g-sface"
    assert output.threshold == predictor.verifier.default_threshold and output.similarity >= output.threshold
    assert output.image1_face_count == 1 and output.image2_face_box is not None


@pytest.mark.parametrize("path", ["/etc/passwd", str(TEST_PACK / "manifest.json")])
def test_a_path_cog_did_not_write_is_never_opened(predictor, path):
    upload = cog_upload(case("single-face/obama.jpg"))
    try:
        output = predictor.compare(image1=CogPath(path), image2=upload, threshold=None)
    finally:
        upload.unlink()
    assert (output.error_code, output.match) == ("image1_invalid", False)


def cog_named_link(target: Path) -> Path:
    """A link to `target` in the temporary folder, named as Cog names an input file: `tempfile`'s
    "tmp", eight random characters, then the suffix. The name is taken with `mkstemp` and the file
    replaced by the link."""
    descriptor, name = tempfile.mkstemp(suffix=target.suffix)
    os.close(descriptor)
    os.unlink(name)
    os.symlink(target, name)
    return Path(name)


def test_a_link_in_the_temporary_folder_is_not_followed(predictor):
    # The link passes the name check, so only opening without following links (read_upload) stops
    # it: followed, it would reach a readable photo of the same person and match.
    link = cog_named_link(case("single-face/obama.jpg"))
    upload = cog_upload(case("single-face/obama2.jpg"))
    try:
        assert link.is_symlink() and predict.written_by_cog(CogPath(link)), "the name alone would let it through"
        output = predictor.compare(image1=CogPath(link), image2=upload, threshold=None)
    finally:
        link.unlink(), upload.unlink()
    assert (output.error_code, output.match, output.similarity) == ("image1_invalid", False, None)
    assert "cannot be read" in output.error


def photo_in_temp_folder(name: str) -> Path:
    """A real photo in the temporary folder under `name`, as another process could leave it."""
    path = Path(tempfile.gettempdir()) / name
    path.write_bytes(case("single-face/obama.jpg").read_bytes())
    return path


@pytest.mark.parametrize("name", ["faceverify-other-upload.jpg", "tmpNOT_COG.jpg", "selfie-tmpabcdefgh.jpg"])
def test_a_string_naming_another_file_in_the_temporary_folder_is_invalid(predictor, name):
    other = photo_in_temp_folder(name)
    upload = cog_upload(case("single-face/obama2.jpg"))
    try:
        output = predictor.compare(image1=CogPath(other), image2=upload, threshold=None)
    finally:
        other.unlink(), upload.unlink()
    assert (output.error_code, output.match, output.similarity) == ("image1_invalid", False, None)


def test_a_file_named_like_cogs_but_in_a_subfolder_is_invalid(predictor, tmp_path):
    nested = tmp_path / "tmpabcdefghfile.jpg"  # tmp_path is itself inside the temporary folder
    nested.write_bytes(case("single-face/obama.jpg").read_bytes())
    upload = cog_upload(case("single-face/obama2.jpg"))
    try:
        output = predictor.compare(image1=CogPath(nested), image2=upload, threshold=None)
    finally:
        upload.unlink()
    assert output.error_code == "image1_invalid"


@pytest.mark.parametrize("kind", ["symlink", "hard-link", "fifo", "folder"])
def test_a_cog_named_path_that_is_not_a_plain_file_is_invalid(predictor, tmp_path, kind):
    # Named exactly as Cog names its inputs, so only opening without links and checking the
    # opened file can refuse it.
    target = Path(tempfile.gettempdir()) / f"tmp{tmp_path.name[-8:].lower().replace('-', '_'):_>8}file.jpg"
    source = tmp_path / "photo.jpg"
    source.write_bytes(case("single-face/obama.jpg").read_bytes())
    make = {"symlink": lambda: target.symlink_to(source), "hard-link": lambda: target.hardlink_to(source),
            "fifo": lambda: os.mkfifo(target), "folder": lambda: target.mkdir()}
    make[kind]()
    upload = cog_upload(case("single-face/obama2.jpg"))
    try:
        assert predict.written_by_cog(CogPath(target)), "the name alone would let it through"
        output = predictor.compare(image1=CogPath(target), image2=upload, threshold=None)
    finally:
        target.rmdir() if kind == "folder" else target.unlink()
        upload.unlink()
    assert (output.error_code, output.match) == ("image1_invalid", False)


def test_weights_url_is_refused_at_setup():
    with pytest.raises(Exception, match="not a URL"):
        predict.Predictor().setup(weights="https://example.com/buffalo_l.zip")


def test_default_weights_folder_is_named_when_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("COG_WEIGHTS", raising=False)
    from faceverify import modelpack

    monkeypatch.setattr(modelpack, "DEFAULT_PACK", tmp_path / "weights" / "buffalo_l")
    with pytest.raises(Exception, match="script/download-weights"):
        predict.Predictor().setup()


def test_cog_weights_environment_selects_the_pack(tmp_path, monkeypatch):
    pack = tmp_path / "pack"
    shutil.copytree(TEST_PACK, pack)
    monkeypatch.setenv("COG_WEIGHTS", str(pack))
    instance = predict.Predictor()
    instance.setup()
    assert instance.verifier.pack.path == pack


def test_async_predict_gives_the_same_answer_as_compare(predictor):
    """Cog awaits predict(); it runs compare() in a thread, so both answer alike."""
    import asyncio
    import inspect

    assert inspect.iscoroutinefunction(predict.Predictor.predict), "Cog needs an async predict() for concurrency > 1"
    first, second = cog_upload(case("single-face/obama.jpg")), cog_upload(case("single-face/obama2.jpg"))
    try:
        awaited = asyncio.run(predictor.predict(image1=first, image2=second, threshold=None))
        assert awaited.match is True and awaited.error_code is None
        assert awaited == predictor.compare(image1=first, image2=second, threshold=None)
    finally:
        first.unlink(), second.unlink()
