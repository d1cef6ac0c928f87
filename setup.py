"""The optional C reader of plain YAML configs (`reconciler/config/_fastyaml.c`, linked with libyaml).

Everything else is declared in pyproject.toml. Without libyaml's headers (Debian: libyaml-dev) the extension is
skipped with a warning and `reconciler.config.yaml_values` reads every file in Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "reconciler.config._fastyaml",
            sources=["reconciler/config/_fastyaml.c"],
            libraries=["yaml"],
            optional=True,
        )
    ]
)
