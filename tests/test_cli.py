"""The project's `kedro run`: --params split on top-level commas only, so lists can be given."""

from __future__ import annotations

import click
import pytest

from selfsup.cli import _parse_params, split_top_level


def parse(value: str):
    return _parse_params(click.Context(click.Command("run")), click.Option(["--params"]), value)


def test_commas_inside_brackets_stay_with_their_value():
    assert split_top_level("a=[1,2],b={c: 1, d: 2},e=3,") == ["a=[1,2]", "b={c: 1, d: 2}", "e=3"]


def test_params_become_nested_values_as_kedro_reads_them():
    parsed = parse("augmentation.output_size=[24,24],pretraining.learning_rate=1e-3,ingestion.path=../x/y.tar.gz")
    assert parsed == {
        "augmentation": {"output_size": [24, 24]},
        "pretraining": {"learning_rate": 0.001},
        "ingestion": {"path": "../x/y.tar.gz"},
    }


def test_an_item_without_a_key_is_refused():
    with pytest.raises(click.UsageError, match="item `24]` must be KEY=VALUE"):
        parse("augmentation.output_size=[24,24]],24]")
