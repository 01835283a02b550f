"""
The optional C fast path of the mapper (``enso_provider.events._speedups``).

Everything else is declared in ``pyproject.toml``. The extension is optional: where it cannot be
compiled the install goes on, and the mapper runs its pure-Python loop, which gives the same bytes.
"""

from __future__ import annotations

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "enso_provider.events._speedups",
            sources=["enso_provider/events/_speedups.c"],
            optional=True,
            extra_compile_args=["-O3"],
        )
    ]
)
