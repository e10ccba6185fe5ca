"""Learning the synthetic reverse task (JoeyNMT's sanity check): attention must form the anti-diagonal."""

import random

import torch

from tests.conftest import make_tiny_lstm
from training.batching import pad


def test_attention_concentrates_on_the_anti_diagonal_after_learning_to_reverse():
    rng = random.Random(0)
    vocab, start, eos = 20, 1, 2
    model = make_tiny_lstm(vocab, vocab, seed=0).train()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = [[rng.randrange(4, vocab) for _ in range(rng.randint(3, 7))] for _ in range(n)]
        return pad(seqs, 0), pad([[*reversed(s), eos] for s in seqs], -100)

    for _ in range(600):
        src, labels = sample(32)
        loss = model(input_ids=src, attention_mask=src.ne(0).long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for _ in range(50):
            src, labels = sample(1)
            n = src.shape[1]
            dec = torch.tensor([[start, *labels[0, :-1].tolist()]])
            alphas = model(input_ids=src, decoder_input_ids=dec, output_attentions=True).cross_attentions[0][0, 0]
            for t in range(n):  # output t copies source n-1-t
                hits += int(alphas[t].argmax()) == n - 1 - t
                total += 1
    assert loss.item() < 0.3
    assert hits / total > 0.9, f"only {hits}/{total} rows peak on the anti-diagonal"
