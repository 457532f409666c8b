"""The text tokenizer: WordPiece (BERT's subword vocabulary), learned from the training texts.

Not to be confused with ``selfsup.tokenizer``, BEiT's *visual* tokenizer (a k-means codebook of
image patches). This one is trained with the ``tokenizers`` library on the training split only,
nothing downloaded: BERT's normalisation (Unicode clean-up, accents stripped, lowercased by
``pretraining.wordpiece.lowercase``) and pre-tokenisation (white space and punctuation), then
``[CLS] text [SEP]`` cut to ``max_length`` tokens. It travels as its JSON (the ``wordpiece``
catalog entry), which holds the vocabulary, the rules and the length.

``tokenizers`` is the ``text`` extra (``pip install -e ".[text]"``): imported when a text run
needs it, so that image runs do without.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from selfsup.config.text_params import WordPieceParams

if TYPE_CHECKING:
    from tokenizers import Tokenizer

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))  # their ids: the trainer puts them first, in this order


def ordinary_tokens(ids):
    """Where the (B, L) tensor ``ids`` holds a token of the text itself: not [CLS], [SEP] or padding."""
    return (ids != PAD) & (ids != CLS) & (ids != SEP)


def _tokenizers():
    try:
        import tokenizers
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "texts need the tokenizers library, the text extra: pip install -e '.[text]'"
        ) from None
    return tokenizers


def fit_wordpiece(texts, params: WordPieceParams) -> Tokenizer:
    """A WordPiece tokenizer trained on ``texts`` (an iterable of str)."""
    tokenizers = _tokenizers()
    models, normalizers, pre_tokenizers = tokenizers.models, tokenizers.normalizers, tokenizers.pre_tokenizers
    decoders, processors, trainers = tokenizers.decoders, tokenizers.processors, tokenizers.trainers
    tokenizer = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=params.lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=params.vocab_size,
        min_frequency=params.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    if [tokenizer.token_to_id(token) for token in SPECIAL_TOKENS] != list(range(len(SPECIAL_TOKENS))):
        raise RuntimeError(f"the WordPiece trainer did not give {SPECIAL_TOKENS} the first ids")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)]
    )
    tokenizer.enable_truncation(params.max_length)
    return tokenizer


def wordpiece_from_json(text: str) -> Tokenizer:
    return _tokenizers().Tokenizer.from_str(text)


def max_length(tokenizer: Tokenizer) -> int:
    return int(tokenizer.truncation["max_length"])


def encode_texts(tokenizer: Tokenizer, texts) -> np.ndarray:
    """int32 (N, max_length) token ids, ``[CLS] … [SEP]`` then ``PAD`` to the right."""
    encodings = tokenizer.encode_batch(list(texts))
    ids = np.full((len(encodings), max_length(tokenizer)), PAD, dtype=np.int32)
    for row, encoding in enumerate(encodings):
        ids[row, : len(encoding.ids)] = encoding.ids
    return ids
