"""Batch translation and corpus scores (sacreBLEU BLEU and chrF, with their signatures)."""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from training.batching import pad


@torch.no_grad()
def translate_texts(
    model: PreTrainedModel,
    src_tok: PreTrainedTokenizerBase,
    tgt_tok: PreTrainedTokenizerBase,
    texts: Sequence[str],
    num_beams: int = 1,
    batch_size: int = 100,
    max_source_tokens: int = 128,
) -> list[str]:
    """Translate ``texts`` (cleaned) in length-sorted batches; output in input order."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = [x[:max_source_tokens] or [src_tok.unk_token_id] for x in src_tok(list(texts)).input_ids]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[str] = [""] * len(ids)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        input_ids = pad([ids[i] for i in idx], src_tok.pad_token_id).to(device)
        gen = model.generate(
            input_ids=input_ids,
            attention_mask=input_ids.ne(src_tok.pad_token_id).long(),
            num_beams=num_beams,
            do_sample=False,
            max_new_tokens=int(1.5 * input_ids.shape[1]) + 10,
        )
        for i, text in zip(idx, tgt_tok.batch_decode(gen, skip_special_tokens=True), strict=True):
            out[i] = text
    model.train(was_training)
    return out


def corpus_scores(hyps: Sequence[str], refs: Sequence[str], tgt_lang: str) -> dict[str, object]:
    """Corpus BLEU and chrF; Chinese references use sacreBLEU's ``zh`` tokenizer."""
    bleu = sacrebleu.BLEU(tokenize="zh" if tgt_lang == "zh" else "13a")
    chrf = sacrebleu.CHRF()
    b = bleu.corpus_score(list(hyps), [list(refs)])
    c = chrf.corpus_score(list(hyps), [list(refs)])
    return {
        "bleu": round(b.score, 2),
        "chrf": round(c.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "n": len(hyps),
    }


def moses_tokenized_bleu(hyps: Sequence[str], tokenized_refs: Sequence[str], lang: str) -> dict[str, object]:
    """BLEU against references prepared as Multi30k's ``tok/`` files: lowercase, Moses punctuation
    normalisation, Moses tokenization with XML escapes (``scripts/task1-tokenize.sh``).

    Hypotheses go through the same pipeline; sacreBLEU then scores with ``tokenize="none"``. This is
    the setup most Multi30k papers report; it runs higher than cased, detokenized sacreBLEU.
    """
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    norm, tok = MosesPunctNormalizer(lang=lang), MosesTokenizer(lang=lang)
    prepared = [tok.tokenize(norm.normalize(h.lower()), escape=True, return_str=True) for h in hyps]
    bleu = sacrebleu.BLEU(tokenize="none", force=True)
    score = bleu.corpus_score(prepared, [list(tokenized_refs)])
    return {
        "bleu": round(score.score, 2),
        "bleu_signature": str(bleu.get_signature()),
        "n": len(hyps),
        "reference": "lowercased, normalised, Moses-tokenized (Multi30k tok/)",
    }
