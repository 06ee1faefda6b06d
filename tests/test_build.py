"""The container definition and the weights script, checked without Docker."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import zipfile

import jsonschema
import yaml

from conftest import REPO, SHARED, TEST_PACK, case


def test_cog_yaml_validates_against_cogs_own_schema():
    schema = json.loads((SHARED / "cog" / "config_schema_v1.0.json").read_text())
    config = yaml.safe_load((REPO / "cog.yaml").read_text())
    jsonschema.validate(config, schema)
    assert config["build"]["python_version"] == "3.11"
    assert config["build"]["python_requirements"] == "requirements.txt"
    assert config["build"]["gpu"] is False
    assert config["predict"] == "predict.py:Predictor"
    assert {"libgl1", "libglib2.0-0"} <= set(config["build"]["system_packages"]), "cv2 from opencv-python needs them"


def test_requirements_are_exact_pins():
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    requirements = [line for line in lines if line]
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.]*", line) for line in requirements)
    names = {line.split("==")[0].lower() for line in requirements}
    assert {"insightface", "onnxruntime", "numpy", "pillow", "opencv-python", "pillow-heif"} <= names
    assert not {"cog", "coglet"} & names, "cog build strips them; cog.yaml's build.sdk_version sets the SDK"
    assert "insightface==2.1" in requirements


def build_context() -> list[str]:
    """The tracked files `cog build` sends to Docker: those no .dockerignore pattern matches, by
    Docker's rule that a pattern matching a folder leaves out everything in it, less `.cog/`, which
    cog build always leaves out (it copies the schema into the image from its own build folder)."""
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
        return any(fnmatch.fnmatch(prefix, pattern.replace("**/", "*")) for prefix in prefixes for pattern in patterns)

    return [path for path in tracked if (REPO / path).exists() and not ignored(path) and not path.startswith(".cog/")]


def test_dockerignore_keeps_weights_in_and_tests_out():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {"tests", ".venv", ".git", "integrations", "node_modules"} <= set(ignored)
    assert not any(entry.rstrip("/") in ("weights", "weights/*", "weights/buffalo_l") for entry in ignored)


def test_build_context_holds_the_pipeline_and_no_tooling():
    context = build_context()
    assert {"predict.py", "cog.yaml", "requirements.txt", "faceverify/verifier.py", "faceverify/calibrations/buffalo_l.json"} <= set(context)
    outside = [path for path in context if not path.startswith(("faceverify/", "weights/"))]
    assert sorted(outside) == [".dockerignore", ".gitignore", "README.md", "cog.yaml", "predict.py", "requirements.txt"]


def test_importing_and_running_the_predictor_loads_no_tooling_module():
    snippet = (
        "import sys, predict\n"
        f"predictor = predict.Predictor(); predictor.setup(weights={str(TEST_PACK)!r})\n"
        f"output = predictor.compare(open({str(case('single-face/obama.jpg'))!r}, 'rb').read(),"
        f" open({str(case('single-face/obama2.jpg'))!r}, 'rb').read())\n"
        "print(output.match, sorted(name for name in sys.modules if name.split('.')[0] in ('faceverify_tools', 'conftest')))\n"
    )
    completed = subprocess.run([sys.executable, "-c", snippet], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "True []", "a whole comparison ran and imported no tooling"
    for path in (REPO / "faceverify").rglob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+faceverify_tools", path.read_text(), re.M), path


def run_download(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "script" / "download-weights"), *args],
                          capture_output=True, text=True, timeout=60)


def test_download_weights_rejects_an_archive_that_is_not_buffalo_l(tmp_path):
    archive = tmp_path / "buffalo_l.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("buffalo_l/det_10g.onnx", b"not the detector")
    result = run_download("--zip", str(archive), "--dest", str(tmp_path / "pack"))
    assert result.returncode == 1
    assert "sha256" in result.stderr and "not buffalo_l.zip" in result.stderr
    assert not (tmp_path / "pack" / "det_10g.onnx").exists()


def test_download_weights_reports_an_unreachable_address_clearly(tmp_path):
    result = run_download("--url", "http://127.0.0.1:9/buffalo_l.zip", "--dest", str(tmp_path / "pack"))
    assert result.returncode == 1
    assert "cannot download" in result.stderr and "--zip" in result.stderr


def test_download_weights_writes_a_manifest_insightface_accepts(tmp_path):
    import importlib.util
    from importlib.machinery import SourceFileLoader

    loader = SourceFileLoader("download_weights", str(REPO / "script" / "download-weights"))
    script = importlib.util.module_from_spec(importlib.util.spec_from_loader("download_weights", loader))
    loader.exec_module(script)
    from insightface.model_zoo.package_manifest import load_model_package

    pack = tmp_path / "buffalo_l"
    pack.mkdir()
    (pack / "manifest.json").write_text(json.dumps(script.manifest()))
    (pack / "MODEL.LICENSE").write_text(script.LICENSE_TEXT)
    descriptor = load_model_package(pack)
    assert set(descriptor.tasks) == {"detection", "recognition"}
    assert descriptor.tasks["recognition"].sha256 == script.FILES["recognition"][1]
    shipped = json.loads((REPO / "faceverify" / "calibrations" / "buffalo_l.json").read_text())
    assert shipped["sha256"] == {task: values[1] for task, values in script.FILES.items()}
    checksums = (SHARED / "weights" / "README.md").read_text()
    for _name, digest, size in script.FILES.values():
        assert digest in checksums and f"{size:,}" in checksums
    assert script.ARCHIVE_SHA256 in checksums


def test_cogs_own_inspector_accepts_the_predictor():
    from cog import _inspector

    info = _inspector.create_predictor("predict", "Predictor")
    assert list(info.inputs) == ["image1", "image2", "threshold", "require_selfie_quality"]
    assert info.inputs["threshold"].ge == 0.0 and info.inputs["threshold"].le == 1.0
    assert {"match", "similarity", "threshold", "error_code", "error"} <= set(info.output.fields)
