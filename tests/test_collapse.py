import logging

import torch
from torch import nn

from selfsup.collapse import COLLAPSE_THRESHOLD, collapse_verdict, embedding_spread, measure_spread


def test_spread_is_about_one_when_spread_and_zero_when_collapsed():
    spread = torch.randn(512, 32, generator=torch.Generator().manual_seed(0))
    collapsed = torch.ones(512, 32) + 1e-6 * spread
    assert embedding_spread(spread) > 0.9
    assert embedding_spread(collapsed) < 1e-3


def test_measuring_leaves_batch_norm_statistics_and_the_mode_alone():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8)).train()
    before = encoder[2].running_mean.clone()
    measure_spread(encoder, torch.rand(10, 1, 4, 4))
    assert torch.equal(encoder[2].running_mean, before)
    assert encoder.training


def test_verdict_warns_once_on_collapse(caplog):
    with caplog.at_level(logging.WARNING, logger="selfsup"):
        healthy = collapse_verdict([(24, 0.6), (49, 0.5)])
        collapsed = collapse_verdict([(24, 0.6), (49, COLLAPSE_THRESHOLD / 10)])
    assert healthy == {"final_embedding_std": 0.5, "collapsed": False}
    assert collapsed["collapsed"] is True
    assert caplog.text.count("Representation collapse") == 1 and "step 49" in caplog.text
