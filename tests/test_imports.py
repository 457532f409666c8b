"""The modules every ``kedro`` command imports load no torch: the package's exports are imported on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

NO_TORCH = "import sys; {statement}; loaded = 'torch' in sys.modules; print(loaded); sys.exit(int(loaded))"


def loads_torch(statement: str) -> bool:
    """Whether ``statement`` loads torch, in a fresh interpreter in the project folder."""
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH.format(statement=statement)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    last_line = result.stdout.strip().rsplit("\n", 1)[-1]
    assert last_line in ("True", "False"), result.stderr[-3000:]
    return last_line == "True"


@pytest.mark.parametrize(
    "module", ["selfsup", "selfsup.cli", "selfsup.config", "selfsup.settings", "selfsup.hooks", "selfsup.preflight"]
)
def test_importing_loads_no_torch(module):
    assert not loads_torch(f"import {module}")


def test_kedro_help_in_the_project_loads_no_torch():
    statement = (
        "from kedro.framework.cli import main; sys.argv = ['kedro', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert not loads_torch(statement)


def test_the_package_exports_are_the_library_functions():
    import selfsup
    from selfsup import embedding, features, methods

    assert selfsup.embed_images is embedding.embed_images and selfsup.load_encoder is embedding.load_encoder
    assert selfsup.embed is features.embed and selfsup.METHODS is methods.METHODS
    assert set(selfsup.__all__) <= set(dir(selfsup))


def test_an_unknown_package_attribute_is_an_attribute_error():
    import selfsup

    with pytest.raises(AttributeError, match="no_such_name"):
        selfsup.no_such_name  # noqa: B018
