"""Make bioimageio.spec 0.5.12 serialise under pydantic >= 2.12.

bioimageio.core 0.11.0 (the newest) pins bioimageio.spec 0.5.12.0, whose three wrap serializers
call ``handler(value, info)``. Current pydantic-core reads the second argument as an index key
and raises ``TypeError: 'index_key' is expected to be an integer or a string``, so no model
description can be built, saved or tested. bioimageio.spec 0.5.14 calls ``handler(value)``;
:func:`patch_bioimageio_spec` gives the three functions that one-argument call (their code
objects are replaced in place, so every reference pydantic captured sees the fix). Functions
that already make the one-argument call are left alone, so a fixed spec is untouched.
"""

from __future__ import annotations

import importlib
import inspect
import re
import textwrap

TARGETS = (
    ("bioimageio.spec._internal.io_packaging", "package_file_descr_serializer"),
    ("bioimageio.spec.model.v0_4", "package_weights"),
    ("bioimageio.spec._internal.validated_string_with_inner_node", "ValidatedStringWithInnerNode._serialize"),
)
"""(module, qualified name) of the serializers that call ``handler(value, info)``."""

_TWO_ARG = re.compile(r"handler\(\s*(\w+),\s*info,[^\n]*\n\s*\)")
_done = False


def patch_bioimageio_spec() -> None:
    """Apply the fix once per process (see the module docstring)."""
    global _done
    if _done:
        return
    for module_name, qualname in TARGETS:
        module = importlib.import_module(module_name)
        obj = module
        for part in qualname.split("."):
            obj = getattr(obj, part)
        func = getattr(obj, "__func__", obj)
        func = getattr(func, "func", func)  # a pydantic decorator proxy
        source = textwrap.dedent(inspect.getsource(func))
        if not _TWO_ARG.search(source):
            continue
        fixed = _TWO_ARG.sub(r"handler(\1)", source)
        fixed = "\n".join(line for line in fixed.splitlines() if not line.lstrip().startswith("@"))
        namespace: dict = {}
        exec(compile(fixed, inspect.getsourcefile(func) or module_name, "exec"), vars(module), namespace)
        func.__code__ = namespace[func.__name__].__code__
    _done = True
