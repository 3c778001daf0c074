"""The bytecode the drtool.drill.payload_cache callback adds to module payloads: zipimport
runs it instead of compiling the source, and falls back to the source wherever the bytecode
does not fit (another Python, a changed source); the payload builder it wraps is the one
the installed ansible-core has."""

from __future__ import annotations

import importlib.util
import inspect
import io
import zipfile
import zipimport
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from ansible.executor import module_common

from drtool import paths

CALLBACK = (paths.content_root() / "collections" / "ansible_collections" / "drtool" / "drill"
            / "plugins" / "callback" / "payload_cache.py")
SOURCE = b"ANSWER = 6 * 7\n"


@pytest.fixture(scope="module")
def callback() -> ModuleType:
    spec = importlib.util.spec_from_file_location("drtool_payload_cache", CALLBACK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def payload(tmp_path: Path, files: dict[str, bytes], callback: ModuleType | None) -> Path:
    """A zip of `files` as Ansible writes a payload (deflated, in memory), with bytecode
    added when `callback` is given; written to a file for zipimport."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
        if callback is not None:
            callback.add_bytecode(zf)
    # A name of its own: zipimport keeps each archive's table of contents by its path.
    path = tmp_path / f"payload-{len(list(tmp_path.glob('payload-*.zip')))}.zip"
    path.write_bytes(buffer.getvalue())
    return path


def loaded_from(path: Path, name: str) -> str:
    """The file name a module's code object carries: the payload-relative name it was
    compiled with when it came from the bytecode, the zip's own path when zipimport
    compiled its source."""
    package = name.rpartition(".")[0].replace(".", "/")
    importer = zipimport.zipimporter(f"{path}/{package}/" if package else str(path))
    code = importer.get_code(name)
    namespace: dict[str, object] = {}
    exec(code, namespace)  # noqa: S102 - the test's own two-line module
    assert namespace["ANSWER"] == 42
    return code.co_filename


def test_each_python_file_of_a_payload_is_imported_from_its_bytecode(tmp_path, callback):
    path = payload(tmp_path, {"pkg/__init__.py": b"", "pkg/answer.py": SOURCE,
                              "pkg/data.txt": b"not python"}, callback)

    names = zipfile.ZipFile(path).namelist()
    assert sorted(names) == ["pkg/__init__.py", "pkg/__init__.pyc", "pkg/answer.py",
                             "pkg/answer.pyc", "pkg/data.txt"]
    assert loaded_from(path, "pkg.answer") == "pkg/answer.py"
    # Without the callback the same payload is compiled from source in every run.
    plain = payload(tmp_path, {"pkg/__init__.py": b"", "pkg/answer.py": SOURCE}, None)
    assert loaded_from(plain, "pkg.answer") == f"{plain}/pkg/answer.py"


def test_bytecode_of_another_python_or_of_another_source_gives_way_to_the_source(
        tmp_path, callback):
    path = payload(tmp_path, {"answer.py": SOURCE}, callback)
    pyc = zipfile.ZipFile(path).read("answer.pyc")
    other_python = b"\x00\x00" + pyc[2:]  # a magic number this Python does not know
    for name, bytecode, source in (("other-python", other_python, SOURCE),
                                   ("changed", pyc, b"ANSWER = 40 + 2\n")):
        odd = tmp_path / name
        odd.mkdir()
        with zipfile.ZipFile(odd / "payload.zip", "w") as zf:
            zf.writestr("answer.py", source)
            zf.writestr("answer.pyc", bytecode)
        assert loaded_from(odd / "payload.zip", "answer") == f"{odd}/payload.zip/answer.py", name


def test_a_file_this_python_cannot_compile_keeps_only_its_source(tmp_path, callback):
    path = payload(tmp_path, {"broken.py": b"def (:\n", "answer.py": SOURCE}, callback)
    assert sorted(zipfile.ZipFile(path).namelist()) == ["answer.py", "answer.pyc", "broken.py"]


def test_the_builder_is_wrapped_once_and_leaves_payloads_with_extensions_alone(
        tmp_path, callback, monkeypatch):
    def build(zf, date_time, remote_module_fqn, b_module_data, module_path, extension_manager):
        zf.writestr("answer.py", b_module_data)

    monkeypatch.setattr(module_common, "_add_module_to_zip", build)
    callback.add_bytecode_to_payloads()
    wrapped = module_common._add_module_to_zip
    callback.add_bytecode_to_payloads()
    assert module_common._add_module_to_zip is wrapped is not build

    for extensions, expected in (([], ["answer.py", "answer.pyc"]), (["coverage"], ["answer.py"])):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            wrapped(zf, None, "answer", SOURCE, "/nowhere/answer.py",
                    SimpleNamespace(extension_names=extensions))
        assert sorted(zipfile.ZipFile(buffer).namelist()) == expected, extensions


def test_the_installed_ansible_core_builds_payloads_as_the_callback_expects():
    """The callback wraps ansible-core's private _add_module_to_zip: the zip first, the
    extension manager last. Another ansible-core that changes it fails here (the callback
    would then leave its payloads as they are)."""
    parameters = list(inspect.signature(module_common._add_module_to_zip).parameters)
    assert parameters[0] == "zf" and parameters[-1] == "extension_manager", parameters
    assert "_add_module_to_zip(" in inspect.getsource(module_common._find_module_utils)


def test_a_builder_of_another_shape_is_left_as_it_is(callback, monkeypatch):
    def build(payload, module_data):
        payload.writestr("answer.py", module_data)

    monkeypatch.setattr(module_common, "_add_module_to_zip", build)
    callback.add_bytecode_to_payloads()
    assert module_common._add_module_to_zip is build
