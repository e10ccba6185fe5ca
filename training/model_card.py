"""Model cards written from measured numbers at export time (never by hand)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from training.config import RunConfig
from training.corpora import CORPORA, Splits

LICENCES = {
    "tatoeba-en-zh": "CC-BY 2.0 FR (tatoeba.org; packaged by manythings.org/anki). Each sentence pair's "
    "attribution (Tatoeba sentence ids and contributors) is the third column of `cmn.txt`; "
    "keep that file with any redistribution.",
    "tatoeba-en-fr": "CC-BY 2.0 FR (tatoeba.org; packaged by manythings.org/anki, release 2019-04-07).",
    "multi30k-en-de": "Non-commercial research and educational use only (Flickr30K-derived; Elliott et al. 2016).",
}
LANG = {"zh": "Chinese", "en": "English", "fr": "French", "de": "German"}
ARCHITECTURES = {
    "lstm": (
        "LSTM encoder–decoder with additive attention",
        "Bidirectional LSTM encoder, LSTM decoder with additive (Bahdanau) attention applied in Luong "
        "order, output tied to the target embeddings; see `models/lstm_attention.py`. Attention: one "
        "layer, one head.",
    ),
    "transformer": (
        "Transformer (Marian architecture)",
        "A `MarianMTModel` built from a `MarianConfig` preset (`models/transformer.py`): post-norm "
        "encoder–decoder, sinusoidal positions, decoder embeddings tied to the output layer. Plain "
        "`transformers` loads it; load with `attn_implementation='eager'` to get attention weights.",
    ),
}


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


MODEL_KEYS = {  # the [model] keys each architecture uses
    "lstm": (
        "embed_dim",
        "hidden_size",
        "encoder_layers",
        "decoder_layers",
        "attention_dim",
        "dropout",
        "max_source_tokens",
    ),
    "transformer": (
        "embed_dim",
        "encoder_layers",
        "decoder_layers",
        "heads",
        "ffn_dim",
        "dropout",
        "attention_dropout",
        "activation_dropout",
        "max_source_tokens",
    ),
}


def _table(rows: dict[str, Any]) -> str:
    lines = ["| key | value |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in rows.items()]
    return "\n".join(lines)


def write_model_card(
    folder: Path,
    cfg: RunConfig,
    splits: Splits,
    state: dict[str, Any],
    model: PreTrainedModel,
    info: dict[str, Any],
) -> None:
    """README.md (the card) and scores.json in ``folder``."""
    d = cfg.data
    src, tgt = LANG.get(d.src_lang, d.src_lang), LANG.get(d.tgt_lang, d.tgt_lang)
    n_params = sum(p.numel() for p in model.parameters())
    size_mb = (folder / "model.safetensors").stat().st_size / 2**20
    vals = [r for r in state["history"] if r["kind"] == "val"]
    test = info.get("test")
    arch_title, arch_text = ARCHITECTURES[cfg.model.architecture]
    parts = [
        f"# {cfg.name}: {src} → {tgt}, {arch_title}\n",
        f"Trained by Lantern (`python -m training.train`). {arch_text}\n",
        "## Test scores\n",
    ]
    if test:
        parts.append(
            f"| split | sentences | decoding | BLEU | chrF |\n|---|---|---|---|---|\n"
            f"| test ({d.corpus}, Lantern's split) | {test['n']} | beam {test['beams']} | "
            f"**{test['bleu']:.2f}** | {test['chrf']:.2f} |\n\n"
            f"- BLEU signature: `{test['bleu_signature']}`\n- chrF signature: `{test['chrf_signature']}`\n"
            f"- Scored on this folder's fp16 weights loaded back as fp32; decoding the test split "
            f"took {test['decode_s']} s.\n"
        )
        tok = info.get("test_tokenized")
        if tok:
            parts.append(
                f"\nThe same outputs scored as most Multi30k papers do ({tok['reference']}; hypotheses "
                f"lowercased and Moses-tokenized the same way), a separate column, not comparable with the "
                f"cased score above:\n\n| BLEU (lowercased, tokenized) |\n|---|\n| **{tok['bleu']:.2f}** |\n\n"
                f"- Signature: `{tok['bleu_signature']}`\n"
            )
    else:
        parts.append("Not scored (exported with `--no-test`).\n")
    parts += [
        "\n## Data\n",
        f"- Corpus: `{d.corpus}` ({CORPORA.get(d.corpus, {}).get('origin', 'uploaded through the app')}), "
        "never committed.",
        f"- Licence: {LICENCES.get(d.corpus, 'as given by whoever supplied the corpus')}",
        f"- Cleaning (NFKC, control/zero-width/BOM removed, whitespace folded, empty, over-long "
        f"(> {d.max_chars} characters) and duplicate pairs dropped): {json.dumps(splits.report)}.",
        f"- Split: {json.dumps(splits.sizes())} pairs, seed {d.split_seed}; pairs that share a "
        "source or a target sentence stay in one split, so no sentence is in two splits"
        + (" (Multi30k: the official splits)." if d.corpus.startswith("multi30k") else "."),
        f"- Training pairs over {d.max_tokens} tokens dropped: {info.get('dropped_too_long', 0)}.\n",
        *_adaptation_lines(info.get("adaptation") or {}, cfg.train.init_from),
        "## Tokenizers (trained on the training split with `tokenizers`; measured on validation)\n",
        "| side | kind | vocab | unk per 100 tokens | val sentences with an unknown | tokens/sentence |",
        "|---|---|---|---|---|---|",
    ]
    tk = cfg.tokenizer
    kinds = (
        (("source", tk.tgt_kind), ("target", tk.tgt_kind))
        if tk.shared
        else (("source", tk.src_kind), ("target", tk.tgt_kind))
    )
    for side, kind in kinds:
        s = info["tokenizers"][side]
        parts.append(
            f"| {side} | {kind} | {s['vocab']} | {s['unk_per_100_tokens']:.2f} | "
            f"{s['sentences_with_unk_pct']:.1f}% | {s['tokens_per_sentence']:.1f} |"
        )
    parts += [
        ("\nOne joint vocabulary for both sides (embeddings shared).\n" if tk.shared else "")
        + "\nChosen by `python -m bench.tokenizers` (see the README).\n",
        "## Model\n",
        f"{n_params:,} parameters; `model.safetensors` {size_mb:.1f} MB (fp16; load as fp32).\n",
        _table({k: v for k, v in cfg.as_dict()["model"].items() if k in MODEL_KEYS[cfg.model.architecture]}),
        "\n## Training\n",
        f"- {state['step']} steps, {state['epoch']} full epochs, stopped by `{info['stop_reason']}`; "
        + (
            f'kept the last weights (`train.keep = "last"`): validation BLEU {state["best_bleu"]:.2f} at step '
            f"{state['best_step']} "
            if cfg.train.keep == "last"
            else f"best validation BLEU {state['best_bleu']:.2f} at step {state['best_step']} "
        )
        + f"(greedy, {len(splits.val[: cfg.train.eval_sentences])} sentences).",
        f"- Wall time {state['elapsed_s'] / 60:.1f} min on {_machine()}, validation included.",
        *(
            [
                f"- Continued from `{state['init_from']['folder']}`: its weights (its best, step "
                f"{state['init_from'].get('weights_step', state['init_from']['step'])}), tokenizers and history (to "
                f"step {state['init_from']['step']}); steps and wall time above count both runs."
            ]
            if state.get("init_from")
            else []
        ),
        *(
            [
                f"- TracIn snapshots: {len(info['tracin'])} (steps "
                + ", ".join(str(s["step"]) for s in info["tracin"])
                + "; mean learning rates "
                + ", ".join(f"{s['lr']:.2g}" for s in info["tracin"])
                + ") in `tracin/`, for the training-data influence of `provenance.tracin`."
            ]
            if info.get("tracin")
            else []
        ),
        f"- Curves: `history.json` ({len(vals)} validations), plotted on the app's Training page.\n",
        _table(cfg.as_dict()["train"]),
        "\n## Samples (first test sentences)\n",
        "| source | reference | Lantern |",
        "|---|---|---|",
    ]
    parts += [f"| {s['src']} | {s['ref']} | {s['hyp']} |" for s in info.get("test_samples", [])]
    register = "import models.lstm_attention  # registers the LSTM with the Auto classes\n"
    target = (
        "tgt_tok = src_tok  # one shared vocabulary\n"
        if tk.shared
        else f"tgt_tok = AutoTokenizer.from_pretrained('checkpoints/{cfg.name}/target_tokenizer')\n"
    )
    parts += [
        "\n## Loading\n",
        "```python\n"
        + (register if cfg.model.architecture == "lstm" else "")
        + "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer\n"
        f"model = AutoModelForSeq2SeqLM.from_pretrained('checkpoints/{cfg.name}', dtype='float32', "
        "attn_implementation='eager')\n"
        f"src_tok = AutoTokenizer.from_pretrained('checkpoints/{cfg.name}')\n" + target + "```\n",
        "## Limits\n",
        "Trained on short everyday sentences (Tatoeba averages 6 words); long, technical or rare-word "
        "input degrades quickly, and characters never seen in training become `<unk>`. Attention "
        "weights show where the decoder looked, not why it chose a word.\n",
    ]
    (folder / "README.md").write_text("\n".join(parts), encoding="utf-8")
    scores = {
        "test": test,
        "test_tokenized": info.get("test_tokenized"),
        "best_val_bleu": state["best_bleu"],
        "steps": state["step"],
        "train_minutes": round(state["elapsed_s"] / 60, 1),
        "parameters": n_params,
    }
    (folder / "scores.json").write_text(json.dumps(scores, indent=1), encoding="utf-8")


def _adaptation_lines(adaptation: dict[str, Any], init_from: str = "") -> list[str]:
    """The card's label of an unsupervised adaptation run (``data.adapt_source``/``adapt_target``/``lowercase``),
    with the test score of the model it continued (``train.init_from``) when that folder has one."""
    if not adaptation:
        return []
    lines = ["## Unsupervised adaptation\n"]
    before = None
    if init_from and (Path(init_from) / "scores.json").exists():
        before = (json.loads((Path(init_from) / "scores.json").read_text(encoding="utf-8")).get("test") or {}).get(
            "bleu"
        )
    if adaptation.get("pairs"):
        lines.append(
            f"**This model was adapted**: its last run trained on {adaptation['pairs']} in-domain sentence pairs "
            f"(`{adaptation['source']}` / `{adaptation['target']}`, their text only, never any gold alignment or "
            f"label)"
            + (
                f" plus {adaptation['mixed']} pairs drawn at random from the training split"
                if adaptation.get("mixed")
                else ""
            )
            + '. When those are the sentences of an evaluation set (the "plus test" practice of unsupervised word '
            "aligners), scores on that set measure the adapted model, not a model that never saw the text: report "
            "them beside the unadapted model's. The test scores above are on the corpus's own split."
        )
    if adaptation.get("pairs"):
        lines.append(
            f"- The split's \"train\" count above is this run's training set: the {adaptation['pairs']} in-domain "
            "pairs (after cleaning) and the draw, not the corpus's training part."
        )
    if adaptation.get("lowercase"):
        lines.append("- Training pairs lowercased (both sides); validation and test pairs keep their case.")
    if before is not None:
        lines.append(
            f"- Test BLEU of `{init_from}` before this run: {before:.2f} (same split and decoding): what the "
            "adaptation cost on the corpus's own domain."
        )
    return [*lines, ""]
