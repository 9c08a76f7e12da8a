"""`avalanche:<Name>` strategies register only where the extra is installed, without importing it.

These tests run in both environments: in the core one they check that nothing Avalanche- or
torchvision-related is registered or imported; in the extra's, that the strategies are listed.
"""

import importlib.util
import subprocess
import sys

import pytest

from cl_nlp.avalanche.strategies import AVALANCHE_STRATEGIES, PREFIX
from cl_nlp.strategies.registry import AVALANCHE_NAMES, AVALANCHE_PREFIX

HAS_AVALANCHE = importlib.util.find_spec("avalanche") is not None


def listing() -> tuple[list[str], set[str]]:
    code = ("import sys; from cl_nlp.strategies import strategy_names; names = strategy_names(); "
            "print(' '.join(names)); print(' '.join(m for m in ('avalanche', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    return out[0].split(), set(out[1].split()) if len(out) > 1 else set()


def test_listing_strategies_never_imports_avalanche_or_torchvision():
    names, imported = listing()
    assert imported == set()  # `cl-nlp strategies` stays fast; the core env never needs torchvision
    avalanche_names = {n for n in names if n.startswith(PREFIX)}
    if HAS_AVALANCHE:
        assert avalanche_names == {PREFIX + n for n in AVALANCHE_STRATEGIES}
    else:
        assert avalanche_names == set()


def test_the_registry_names_the_adapters_strategies_without_importing_it():
    assert AVALANCHE_NAMES == set(AVALANCHE_STRATEGIES) and AVALANCHE_PREFIX == PREFIX


@pytest.mark.skipif(not HAS_AVALANCHE, reason="the avalanche extra is not installed (see .ci/avalanche)")
def test_every_table_entry_names_an_avalanche_class_taking_its_options():
    import dataclasses
    import inspect

    from cl_nlp.avalanche.strategies import AvalancheStrategy

    for name, options_cls in AVALANCHE_STRATEGIES.items():
        cls = AvalancheStrategy(options_cls()).avalanche_class()
        params = inspect.signature(cls.__init__).parameters
        for f in dataclasses.fields(options_cls):
            assert f.name in params, f"{name}: {cls.__name__} takes no argument {f.name!r}"


@pytest.mark.skipif(HAS_AVALANCHE, reason="the avalanche extra is installed here")
def test_an_avalanche_strategy_without_the_extra_says_how_to_install_it(tmp_path, capsys):
    from cl_nlp.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--strategy", "avalanche:LwF", "--no-tracking", "--output", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs the optional extra cl-nlp[avalanche]" in err[0] and "docs/avalanche.md" in err[0]
    assert not any(tmp_path.iterdir())  # refused before anything was made
