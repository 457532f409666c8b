"""The WordPiece tokenizer, the text Transformer and the bag, MLM's corruption, SimCSE's views, and training."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

pytest.importorskip("tokenizers", reason="the text extra: pip install -e '.[text]'")

from selfsup.config import ParameterError, PretrainingParams, validate  # noqa: E402
from selfsup.config.text_params import MLMParams, TextBagParams, TextTransformerParams, WordPieceParams  # noqa: E402
from selfsup.text.bag import TextBag  # noqa: E402
from selfsup.text.encoder import TextTransformer, text_encoder_from_checkpoint  # noqa: E402
from selfsup.text.features import embed_token_ids  # noqa: E402
from selfsup.text.methods import SimCSE, cut_tokens, mask_tokens  # noqa: E402
from selfsup.text.token_views import TokenViews  # noqa: E402
from selfsup.text.training import pretrain_texts  # noqa: E402
from selfsup.text.wordpiece import (  # noqa: E402
    CLS,
    MASK,
    PAD,
    SEP,
    SPECIAL_TOKENS,
    encode_texts,
    fit_wordpiece,
    wordpiece_from_json,
)
from tests.text_data import topic_sentences  # noqa: E402

SENTENCES = [sentence for sentence, _ in topic_sentences(60)]
SMALL = TextTransformerParams(dim=32, depth=1, heads=2, dropout=0.1)


@pytest.fixture(scope="module")
def tokenizer():
    return fit_wordpiece(SENTENCES, WordPieceParams(vocab_size=200, max_length=16))


def test_wordpiece_learns_from_the_texts_and_travels_as_json(tokenizer):
    again = wordpiece_from_json(tokenizer.to_str())
    assert [again.token_to_id(token) for token in SPECIAL_TOKENS] == [PAD, 1, CLS, SEP, MASK]
    ids = encode_texts(again, ["The CAT likes the cheese", "a " * 40])
    assert ids.shape == (2, 16) and ids.dtype == np.int32
    assert again.decode(ids[0].tolist()) == "the cat likes the cheese"  # lowercased, special tokens dropped
    assert ids[0, 0] == CLS and PAD in ids[0] and ids[1, -1] == SEP  # a long text is cut to max_length
    assert 50 < again.get_vocab_size() <= 200


def test_the_features_do_not_depend_on_padding():
    encoder = TextTransformer(100, 16, SMALL).eval()
    ids = torch.tensor([[CLS, 10, 11, 12, SEP]])
    padded = torch.cat([ids, torch.full((1, 6), PAD)], dim=1)
    torch.testing.assert_close(encoder(ids), encoder(padded))
    cls_encoder = TextTransformer(100, 16, SMALL.model_copy(update={"pooling": "cls"})).eval()
    cls_encoder.load_state_dict(encoder.state_dict())
    torch.testing.assert_close(cls_encoder(ids), cls_encoder.token_states(ids)[:, 0])


def test_the_bag_is_a_weighted_mean_of_the_texts_own_token_embeddings():
    bag = TextBag(100, 16, TextBagParams(dim=8))
    ids = torch.tensor([[CLS, 10, 11, 12, SEP, PAD, PAD]])
    reordered = torch.tensor([[CLS, 12, 10, 11, SEP]])
    torch.testing.assert_close(bag(ids), bag(reordered))
    torch.testing.assert_close(bag(ids)[0], bag.tokens.weight[10:13].mean(0))  # untrained, every token weighs 1
    with torch.no_grad():
        bag.token_weights.weight[12] = 5.0
    weights = torch.tensor([1.0, 1.0, float(torch.nn.functional.softplus(torch.tensor(5.0))) / float(np.log(2))])
    expected = (weights[:, None] * bag.tokens.weight[10:13]).sum(0) / weights.sum()
    torch.testing.assert_close(bag(ids)[0], expected)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"method": "mlm"}, "masked language modelling"),
        ({"method": "simcse", "simcse": {"token_cutoff": 0.5, "mlm_weight": 0.1}}, "masked language modelling"),
        ({"method": "simcse"}, "simcse.token_cutoff > 0"),
    ],
)
def test_the_bag_refuses_what_needs_context_or_dropout(settings, named):
    with pytest.raises(ParameterError, match=named):
        validate(PretrainingParams, "pretraining", {"backbone": "text_bag", **settings})


def test_mlm_corrupts_15_percent_of_the_ordinary_tokens_80_10_10():
    torch.manual_seed(0)
    ids = torch.randint(len(SPECIAL_TOKENS), 1000, (400, 50))
    ids[:, 0], ids[:, 40], ids[:, 41:] = CLS, SEP, PAD
    inputs, chosen = mask_tokens(ids, MLMParams(), vocab_size=1000)
    assert not chosen[:, [0, 40, 45]].any()
    assert chosen.sum(1).min() >= 1
    assert chosen[:, 1:40].float().mean().item() == pytest.approx(
        0.15, abs=0.01
    )  # the forced one is nearly always among them
    masked = (inputs[chosen] == MASK).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert masked == pytest.approx(0.8, abs=0.02) and kept == pytest.approx(0.1, abs=0.02)
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_simcse_views_differ_only_by_dropout():
    torch.manual_seed(0)
    method = SimCSE(TextTransformer(100, 16, SMALL), PretrainingParams())
    ids = torch.randint(len(SPECIAL_TOKENS), 100, (8, 1, 10)).expand(-1, 2, -1)
    first, second = method.views(ids)
    assert torch.equal(first, second)
    method.train()
    assert not torch.allclose(method.encoder(first), method.encoder(second))
    method.eval()
    torch.testing.assert_close(method.encoder(first), method.encoder(second))


def test_token_cutoff_removes_its_share_of_each_views_tokens_and_keeps_one():
    torch.manual_seed(0)
    ids = torch.randint(len(SPECIAL_TOKENS), 100, (2000, 12))
    ids[:, 0], ids[:, -1], ids[:5, 1:-1] = CLS, SEP, PAD  # five texts with no ordinary token at all
    ids[5:10, 2:-1] = PAD  # five texts with a single one
    cut = cut_tokens(ids, 0.3)
    removed = (cut == PAD) & (ids != PAD)
    assert removed[10:].float().mean().item() * 12 / 10 == pytest.approx(0.3, abs=0.02)
    assert torch.equal(cut[removed == 0], ids[removed == 0])  # nothing else changes
    assert ((cut != PAD) & (cut != CLS) & (cut != SEP))[5:].any(dim=1).all()  # every text keeps a token
    assert torch.equal(cut[:10], ids[:10])


def test_simcse_token_cutoff_gives_each_view_its_own_tokens():
    torch.manual_seed(0)
    method = SimCSE(TextTransformer(100, 16, SMALL), PretrainingParams(simcse={"token_cutoff": 0.3}))
    ids = torch.randint(len(SPECIAL_TOKENS), 100, (8, 1, 10)).expand(-1, 2, -1)
    first, second = method.views(ids)
    assert not torch.equal(first, second)
    assert ((first == PAD) | (first == ids[:, 0])).all() and ((second == PAD) | (second == ids[:, 1])).all()


def test_simcse_with_an_mlm_term_learns_to_predict_the_masked_tokens_of_its_first_view():
    """The weighted MLM term is really trained: on texts of a few repeated words, its accuracy rises
    from chance while the contrastive loss is there beside it."""
    torch.manual_seed(0)
    params = PretrainingParams(simcse={"mlm_weight": 1.0}, mlm={"mask_ratio": 0.3})
    method = SimCSE(TextTransformer(30, 12, SMALL), params)
    ids = torch.randint(len(SPECIAL_TOKENS), 30, (64, 1, 12)).expand(-1, 2, -1).clone()
    ids[:, :, 6:] = ids[:, :, :6]  # the second half repeats the first: masked tokens are predictable
    optimizer = torch.optim.Adam(method.parameters(), lr=3e-3)
    first = [method.loss(method.views(ids))[1]["mlm_accuracy"] for _ in range(3)]
    for _ in range(150):
        loss, _ = method.loss(method.views(ids))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    logs = [method.loss(method.views(ids))[1] for _ in range(3)]
    assert np.mean([log["mlm_accuracy"] for log in logs]) > np.mean(first) + 0.3
    assert all(np.isfinite(log["contrastive"]) for log in logs)
    plain = SimCSE(TextTransformer(30, 12, SMALL), PretrainingParams())
    assert plain.head is None and plain.loss(plain.views(ids))[1] == {}


def test_token_views_cut_each_batch_to_its_longest_text_and_share_it_out():
    ids = np.zeros((10, 16), np.int32)
    for row in range(10):
        ids[row, : row + 2] = 7
    views = TokenViews(ids, vocab_size=50)
    batches = list(views.epoch_batches(2, 4, torch.Generator().manual_seed(0), torch.device("cpu"), None, 0))
    assert len(batches) == 2 and all(b.shape[:2] == (4, 2) for b in batches)
    for batch in batches:
        assert (batch[:, 0, -1] != PAD).any() and torch.equal(batch[:, 0], batch[:, 1])
    skipped = list(views.epoch_batches(2, 4, torch.Generator().manual_seed(0), torch.device("cpu"), None, 0, skip=1))
    assert len(skipped) == 1 and torch.equal(skipped[0], batches[1])


@pytest.mark.parametrize(
    ("method", "backbone", "options"),
    [
        ("mlm", "text_transformer", {}),
        ("simcse", "text_transformer", {}),
        ("simcse", "text_bag", {"token_cutoff": 0.5}),
    ],
)
def test_each_method_trains_and_its_encoder_embeds(tokenizer, method, backbone, options, tmp_path):
    params = PretrainingParams(
        method=method,
        backbone=backbone,
        epochs=3,
        batch_size=32,
        warmup_epochs=0.5,
        text_transformer=SMALL,
        text_bag={"dim": 32},
        simcse=options,
        checkpoint={"directory": str(tmp_path)},
    )
    ids = encode_texts(tokenizer, SENTENCES)
    result = pretrain_texts(ids, tokenizer.get_vocab_size(), params)
    losses = result.history["loss"].to_numpy()
    assert result.summary["steps"] == 3 * (len(ids) // 32) and result.summary["views"] == "tokens"
    assert losses[-3:].mean() < losses[:3].mean()
    assert not any(tmp_path.iterdir())  # a finished run removes its checkpoints
    features = embed_token_ids([text_encoder_from_checkpoint(result.checkpoint)], ids[:10])[0]
    assert features.shape == (10, 32) and np.allclose(np.linalg.norm(features, axis=1), 1, atol=1e-5)


def test_an_interrupted_text_run_resumes_to_the_same_encoder_and_history(tokenizer, tmp_path, monkeypatch):
    """Masks and dropout come from the generators the checkpoint restores: the resumed run is bitwise the same."""
    import selfsup.train

    ids = encode_texts(tokenizer, SENTENCES)

    def params(folder):
        return PretrainingParams(
            method="mlm",
            backbone="text_transformer",
            epochs=2,
            batch_size=32,
            text_transformer=SMALL,
            checkpoint={"directory": str(folder), "every_steps": 3},
        )

    reference = pretrain_texts(ids, tokenizer.get_vocab_size(), params(tmp_path / "reference"))
    real_step = selfsup.train.train_step

    def step_until_interrupted(*args):
        if inspect.signature(real_step).bind(*args).arguments["step"] == 4:
            raise KeyboardInterrupt
        return real_step(*args)

    with monkeypatch.context() as patch:
        patch.setattr(selfsup.train, "train_step", step_until_interrupted)
        with pytest.raises(KeyboardInterrupt):
            pretrain_texts(ids, tokenizer.get_vocab_size(), params(tmp_path / "run"))
    resumed = pretrain_texts(ids, tokenizer.get_vocab_size(), params(tmp_path / "run"))
    assert resumed.summary["resumed_from_step"] == 3
    assert resumed.history["loss"].tolist() == reference.history["loss"].tolist()
    for name, tensor in reference.checkpoint["state_dict"].items():
        assert torch.equal(tensor, resumed.checkpoint["state_dict"][name]), name


@pytest.mark.slow  # ~30 s: two worker processes import the package
def test_two_processes_train_a_text_method(tokenizer):
    params = PretrainingParams(
        method="simcse",
        backbone="text_transformer",
        epochs=1,
        batch_size=32,
        text_transformer=SMALL,
        distributed={"nproc_per_node": 2},
    )
    result = pretrain_texts(encode_texts(tokenizer, SENTENCES), tokenizer.get_vocab_size(), params)
    assert result.summary["processes"] == 2 and result.summary["steps"] == len(SENTENCES) // 32
    assert np.isfinite(result.history["loss"]).all()
