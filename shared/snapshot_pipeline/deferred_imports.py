"""Modules the SDKs import at module level that the functions never use: loaded when first touched.

``oss2`` imports its client-side-encryption stack (``oss2.crypto``: pycryptodome's RSA and AES, the
KMS SDK ``aliyunsdkkms`` and ``aliyunsdkcore``) whenever ``oss2`` is imported, though the pipeline
reads and writes plain objects. Each module named in :data:`DEFERRED` is found as usual but loaded
through :class:`importlib.util.LazyLoader` (https://docs.python.org/3/library/importlib.html#importlib.util.LazyLoader):
importing it binds a module object and runs nothing; the first attribute read on it runs the module,
so code that does need it gets the real module, only later. A module stays unloaded only if it is
imported once, by ``import x`` or ``from package import x`` (x a submodule): ``from x import name``
reads an attribute at once, and on Python 3.10 a second ``import x`` reads ``x.__spec__``, which
runs it.

``aiohttp`` (over a quarter of the callback's first call; the synchronous calls never use it) is not
deferred: no import mechanism can keep it unloaded while every ICE call goes through
``darabonba.core``, whose imports read its names at import (``darabonba.response`` does
``from aiohttp import ClientResponse``; ``darabonba.utils.stream`` annotates a parameter with
``aiohttp.ClientSession``, evaluated when its class is made), and ``ClientSession`` is defined in
``aiohttp.client``, nearly all of aiohttp's import. The three plain ``import aiohttp`` (``Tea.core``,
``darabonba.core``, ``stream.py``) would not run a module whose PEP 562 ``__getattr__`` loads it on
the first name it lacks (its ``__spec__`` is a real attribute): that is the way once darabonba names
aiohttp only when type checking, if it also loads the package before a submodule (``import
aiohttp.client`` first fails with a circular import when a plain stub is in ``sys.modules``).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

#: oss2.crypto and oss2.utils' imports: the client-side-encryption stack the pipeline never uses.
DEFERRED = frozenset({
    "Crypto.Cipher.AES", "Crypto.Cipher.PKCS1_OAEP", "Crypto.Cipher.PKCS1_v1_5", "Crypto.PublicKey.RSA",
    "Crypto.Random", "Crypto.Util.Counter",
    "aliyunsdkcore.client", "aliyunsdkcore.http.format_type", "aliyunsdkcore.http.method_type",
    "aliyunsdkkms.request.v20160120.GenerateDataKeyRequest", "aliyunsdkkms.request.v20160120.DecryptRequest",
    "aliyunsdkkms.request.v20160120.EncryptRequest",
})

# Source and bytecode modules: an extension module (C) cannot be made lazy.
_LAZY_CAPABLE = (importlib.machinery.SourceFileLoader, importlib.machinery.SourcelessFileLoader)


class DeferringFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of ``names`` with the other finders and wraps their loader in a LazyLoader."""

    def __init__(self, names: frozenset[str]):
        self.names = names

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.names:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                if isinstance(spec.loader, _LAZY_CAPABLE):
                    spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def install(names: frozenset[str] = DEFERRED) -> None:
    """Defer ``names`` from now on in this process (once; a module already imported stays as it is)."""
    if not any(isinstance(finder, DeferringFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, DeferringFinder(names))
