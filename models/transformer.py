"""Lantern's small Transformer: a ``MarianMTModel`` built from a ``MarianConfig`` preset.

No hand-written Transformer: Marian's architecture (post-norm encoder-decoder, sinusoidal positions,
scaled embeddings) is what OPUS-MT uses, and plain ``transformers`` loads the result. Source and
target vocabularies are separate (zh->en) or shared with tied embeddings (en->de joint BPE).
"""

from __future__ import annotations

from transformers import MarianConfig, MarianMTModel


def build_transformer(
    src_vocab: int,
    tgt_vocab: int,
    shared_vocab: bool,
    *,
    embed_dim: int = 256,
    encoder_layers: int = 3,
    decoder_layers: int = 3,
    heads: int = 4,
    ffn_dim: int = 1024,
    dropout: float = 0.1,
    attention_dropout: float = 0.1,
    activation_dropout: float = 0.0,
    max_source_tokens: int = 128,
) -> MarianMTModel:
    """A freshly initialised Marian model; ``shared_vocab`` ties source and target embeddings."""
    if embed_dim % heads:
        raise ValueError(f"embed_dim {embed_dim} is not divisible by heads {heads}")
    config = MarianConfig(
        vocab_size=src_vocab,
        decoder_vocab_size=tgt_vocab,
        share_encoder_decoder_embeddings=shared_vocab,
        d_model=embed_dim,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=ffn_dim,
        decoder_ffn_dim=ffn_dim,
        dropout=dropout,
        attention_dropout=attention_dropout,
        activation_dropout=activation_dropout,
        activation_function="relu",
        max_position_embeddings=max(256, max_source_tokens * 2),
        scale_embedding=True,
        tie_word_embeddings=True,  # decoder input embeddings = output layer
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        forced_eos_token_id=2,
    )
    config.max_source_tokens = max_source_tokens
    return MarianMTModel(config)
