"""Small text datasets made by the tests: a labelled folder and a CSV of three topics, unlike enough
for a few seconds of training to tell them apart."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

TOPICS = {
    "animals": "cat dog horse bird fish cow sheep goat mouse lion tiger wolf".split(),
    "food": "bread cheese apple rice soup cake pasta salad butter honey pear plum".split(),
    "tools": "hammer saw drill wrench chisel pliers knife axe spade rake file clamp".split(),
}
VERBS = "likes sees finds wants needs keeps holds moves".split()


def topic_sentences(per_topic: int, seed: int = 0) -> list[tuple[str, str]]:
    """(sentence, topic) pairs, ``per_topic`` distinct sentences of each topic."""
    rng = random.Random(seed)
    pairs = []
    for topic, words in TOPICS.items():
        made = set()
        while len(made) < per_topic:
            made.add(
                f"{rng.choice(['the', 'a', 'my'])} {rng.choice(words)} {rng.choice(VERBS)} the "
                f"{rng.choice(words)} and the {rng.choice(words)}"
            )
        pairs += [(sentence, topic) for sentence in sorted(made)]
    return pairs


def labelled_text_folder(root: Path, per_topic: int = 40) -> Path:
    """``root/TOPIC/NNN.txt``, one sentence each."""
    for position, (sentence, topic) in enumerate(topic_sentences(per_topic)):
        (root / topic).mkdir(parents=True, exist_ok=True)
        (root / topic / f"{position:04d}.txt").write_text(sentence, encoding="utf-8")
    return root


def text_csv(path: Path, per_topic: int = 40) -> Path:
    """A CSV with columns ``body`` (the sentence) and ``topic``, plus an unrelated ``n``."""
    pairs = topic_sentences(per_topic, seed=1)
    frame = pd.DataFrame({"n": range(len(pairs)), "body": [s for s, _ in pairs], "topic": [t for _, t in pairs]})
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.sample(frac=1.0, random_state=0).to_csv(path, index=False)
    return path
