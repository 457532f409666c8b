"""SimCLR recipe variants on Fashion-MNIST at one pretraining budget, each beside the unchanged recipe.

Each trial is the `fashion_mnist` environment's SimCLR row of `methods_fashion_mnist.py`
(same views, same evaluation protocol on the 10,000 test images) with some parameters
overridden: a JSON object with any of ``simclr`` (the method's own section),
``pretraining`` and ``augmentation``. Trials run one after another in this process;
one JSON line each. Run it with nothing else on the machine.

    python benchmarks/recipe_trials.py --budget-s 300 \\
        base='{}' essl='{"simclr": {"rotation_weight": 0.4}}' \\
        wide='{"pretraining": {"small_cnn": {"widths": [32, 64, 128, 512], "output_grid": 2}}}'
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import methods_fashion_mnist as methods
from _common import emit
from _environments import outputs


def trial_parameters(base: dict, overrides: dict) -> dict:
    parameters = copy.deepcopy(base)
    for section in ("pretraining", "augmentation"):
        parameters[section].update(overrides.get(section, {}))
    return parameters


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget-s", type=float, default=300.0)
    parser.add_argument("--cache", type=Path, default=outputs("fashion_mnist") / "05_model_input/methods_benchmark")
    parser.add_argument("trials", nargs="+", help="NAME='{json overrides}'")
    args = parser.parse_args()
    base = dict(methods.environment_parameters())
    for trial in args.trials:
        name, _, text = trial.partition("=")
        overrides = json.loads(text or "{}")
        started = time.perf_counter()
        parameters = trial_parameters(base, overrides)
        row = methods.run_row("simclr", args.budget_s, args.cache, None, overrides.get("simclr"), parameters)
        emit(
            {
                "benchmark": "recipe_trials",
                "trial": name,
                "overrides": overrides,
                "budget_s": args.budget_s,
                **{key: row[key] for key in ("steps", "images_per_s", "extraction_s", "evaluation_s")},
                "metrics": row["metrics"],
                "wall_s": time.perf_counter() - started,
            }
        )


if __name__ == "__main__":
    main()
