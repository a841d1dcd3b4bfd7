"""The deferred modules (:mod:`snapshot_pipeline.deferred_imports`): a real first callback, served by a
fresh interpreter from the build folder as on Function Compute, never runs them; code that does need
one gets the real module. And why aiohttp is not one of them."""
from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from bench.cold_start import ColdRunner, _signed_request, function_context, function_env, prepare_job
from localcloud import build

pytestmark = pytest.mark.slow  # builds the function folders (the dependencies are cached) and runs a cloud

#: Imported by oss2 (its client-side encryption) at module level; the callback never uses them.
NOT_LOADED = ("Crypto.Cipher.AES", "Crypto.Cipher.PKCS1_OAEP", "Crypto.Cipher.PKCS1_v1_5", "Crypto.PublicKey.RSA",
              "Crypto.Random", "Crypto.Util.Counter", "aliyunsdkcore.client",
              "aliyunsdkkms.request.v20160120.GenerateDataKeyRequest", "aliyunsdkkms.request.v20160120.DecryptRequest")


@pytest.fixture(scope="module")
def folders():
    runtime = build.find_runtime_python()
    return runtime or "python3", build.build(build.ROOT / "build", runtime_python=runtime, log=lambda *_: None)


def test_the_first_callback_does_not_run_the_encryption_stack(cloud, folders):
    python, built = folders
    job_id = prepare_job(cloud)
    runner = ColdRunner(python, function_env(cloud), function_context(cloud),
                        new_request=lambda: _signed_request(cloud, job_id))
    loaded = set(runner.callback([built["callback"]], "callback")["loaded"])
    assert {"oss2", "oss2.crypto", "alibabacloud_ice20201109.client"} <= loaded  # the SDKs did their work
    assert sorted(loaded & set(NOT_LOADED)) == []


#: In a fresh interpreter from the build folder, with the deferral installed as the handlers have it:
#: oss2 imports; then code touches the deferred AES and RSA modules, which load and work.
NEEDED_AFTER_ALL = textwrap.dedent("""
    import json, sys
    sys.path[:] = [sys.argv[1]] + [p for p in sys.path if "-packages" not in p]
    from snapshot_pipeline import deferred_imports
    deferred_imports.install()
    import oss2
    from Crypto.Cipher import AES
    from Crypto.PublicKey import RSA
    before = type(AES).__name__
    box = AES.new(b"k" * 16, AES.MODE_ECB)
    key = RSA.generate(1024)
    print(json.dumps({"before": before, "after": type(AES).__name__,
                      "round_trip": AES.new(b"k" * 16, AES.MODE_ECB).decrypt(box.encrypt(b"x" * 16)).decode(),
                      "rsa_bits": key.size_in_bits(), "crypto_bucket": oss2.CryptoBucket.__name__}))
""")


def test_a_deferred_module_needed_after_all_loads_and_works(folders):
    python, built = folders
    done = subprocess.run([python, "-I", "-c", NEEDED_AFTER_ALL, str(built["callback"])], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"before": "_LazyModule", "after": "module", "round_trip": "x" * 16,
                                       "rsa_bits": 1024, "crypto_bucket": "CryptoBucket"}


#: Why aiohttp is not deferred (deferred_imports' docstring): in a fresh interpreter from the build
#: folder, aiohttp is a module that records the names read from it (PEP 562 ``__getattr__``) and
#: answers them with stand-ins; then the SDKs are imported as the callback imports them.
ASKED_OF_AIOHTTP = textwrap.dedent("""
    import importlib.util, json, sys
    sys.path[:] = [sys.argv[1]] + [p for p in sys.path if "-packages" not in p]
    from snapshot_pipeline import deferred_imports, ice
    deferred_imports.install()
    ice._import_models_lazily()
    aiohttp = importlib.util.module_from_spec(importlib.util.find_spec("aiohttp"))
    asked = set()
    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        reader = sys._getframe(1)
        while reader.f_globals["__name__"].startswith("importlib"):  # `from aiohttp import name` asks twice
            reader = reader.f_back
        asked.add((reader.f_globals["__name__"], name))
        return type(name, (), {})
    aiohttp.__getattr__ = __getattr__
    sys.modules["aiohttp"] = aiohttp
    import alibabacloud_ice20201109.client, oss2
    print(json.dumps({"asked": sorted(asked), "submodules": [m for m in sys.modules if m.startswith("aiohttp.")]}))
""")


def test_aiohttp_is_loaded_only_for_the_names_darabonba_reads_at_import(folders):
    """If this fails after an SDK update, aiohttp may now be deferrable (with a PEP 562 module, not LazyLoader)."""
    python, built = folders
    done = subprocess.run([python, "-I", "-c", ASKED_OF_AIOHTTP, str(built["callback"])], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"asked": [["darabonba.response", "ClientResponse"],
                                                 ["darabonba.utils.stream", "ClientResponse"],
                                                 ["darabonba.utils.stream", "ClientSession"]],
                                       "submodules": []}
