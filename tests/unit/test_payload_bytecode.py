"""The bytecode the drtool.drill.payload_cache callback adds to module payloads: zipimport
runs it instead of compiling the source, and falls back to the source wherever the bytecode
does not fit (another Python, a changed source); the module's own file keeps its source;
the payload builder it wraps is the one the installed ansible-core has, and nothing is
wrapped outside drtool's runs."""

from __future__ import annotations

import importlib.util
import inspect
import io
import os
import subprocess
import sys
import zipfile
import zipimport
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from ansible.executor import module_common
from ansible.module_utils._internal import _deprecator

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
    """The file name a module's code object carries: "/" and its place in the payload when
    it came from the bytecode, the zip's own path when zipimport compiled its source."""
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
    assert loaded_from(path, "pkg.answer") == "/pkg/answer.py"
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


def test_the_builder_is_wrapped_once_leaves_the_module_its_source_and_extensions_alone(
        tmp_path, callback, monkeypatch):
    def build(zf, date_time, remote_module_fqn, b_module_data, module_path, extension_manager):
        zf.writestr("ns/answer.py", b_module_data)  # the module, as Ansible writes it last

    monkeypatch.setattr(module_common, "_add_module_to_zip", build)
    callback.add_bytecode_to_payloads()
    wrapped = module_common._add_module_to_zip
    callback.add_bytecode_to_payloads()
    assert module_common._add_module_to_zip is wrapped is not build

    for extensions, expected in (([], ["ns/answer.py", "util.py", "util.pyc"]),
                                 (["coverage"], ["ns/answer.py", "util.py"])):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("util.py", SOURCE)  # a module_utils file, written before the module
            wrapped(zf, None, "ns.answer", SOURCE, "/nowhere/answer.py",
                    extension_manager=SimpleNamespace(extension_names=extensions))
        assert sorted(zipfile.ZipFile(buffer).namelist()) == expected, extensions


def test_outside_drtools_runs_the_builder_is_left_as_it_is(callback, monkeypatch, tmp_path):
    monkeypatch.delenv("DRTOOL_PAYLOAD_CACHE", raising=False)
    before = module_common._add_module_to_zip
    callback.CallbackModule()
    assert module_common._add_module_to_zip is before
    assert not getattr(before, "drtool_bytecode", False)


def test_the_bytecode_keeps_asserts_whatever_the_controllers_optimisation(tmp_path):
    """A controller run with -O (PYTHONOPTIMIZE) still writes bytecode a module run without
    it can take: the pyc header does not say how it was optimised."""
    script = (f"import importlib.util, io, sys, zipfile\n"
              f"spec = importlib.util.spec_from_file_location('cb', {str(CALLBACK)!r})\n"
              f"cb = importlib.util.module_from_spec(spec); spec.loader.exec_module(cb)\n"
              f"zf = zipfile.ZipFile({str(tmp_path / 'payload.zip')!r}, 'w')\n"
              f"zf.writestr('strict.py', 'assert False, \"kept\"\\n'); cb.add_bytecode(zf)\n"
              f"zf.close()\n")
    done = subprocess.run([sys.executable, "-O", "-c", script], capture_output=True, text=True,
                          check=False, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert done.returncode == 0, done.stderr
    code = zipimport.zipimporter(str(tmp_path / "payload.zip")).get_code("strict")
    assert code.co_filename == "/strict.py"
    with pytest.raises(AssertionError, match="kept"):
        exec(code, {})  # noqa: S102 - the test's own one-line module


def test_a_collections_module_utils_are_attributed_as_from_their_source(tmp_path, callback):
    """Ansible reads a deprecation's origin from the calling code's file name: the leading
    "/" keeps a collection's path recognisable as one (a bare relative name is not)."""
    name = "ansible_collections/acme/tools/plugins/module_utils/answer.py"
    path = payload(tmp_path, {name: SOURCE}, callback)
    package = "ansible_collections.acme.tools.plugins.module_utils"
    from_bytecode = zipimport.zipimporter(f"{path}/{package.replace('.', '/')}/").get_code(
        f"{package}.answer").co_filename
    assert from_bytecode == "/" + name
    from_source = _deprecator._path_as_plugininfo(f"{path}/{name}")
    assert from_source is not None
    assert _deprecator._path_as_plugininfo(from_bytecode) == from_source


def test_the_installed_ansible_core_builds_payloads_as_the_callback_expects():
    """The callback wraps ansible-core's private _add_module_to_zip: the zip first, the
    extension manager last. Another ansible-core that changes it fails here (the callback
    would then leave its payloads as they are)."""
    parameters = list(inspect.signature(module_common._add_module_to_zip).parameters)
    assert parameters[0] == "zf" and parameters[-1] == "extension_manager", parameters
    assert "remote_module_fqn" in parameters
    assert "_add_module_to_zip(" in inspect.getsource(module_common._find_module_utils)


def test_a_builder_of_another_shape_is_left_as_it_is(callback, monkeypatch):
    def build(payload, module_data):
        payload.writestr("answer.py", module_data)

    monkeypatch.setattr(module_common, "_add_module_to_zip", build)
    callback.add_bytecode_to_payloads()
    assert module_common._add_module_to_zip is build
