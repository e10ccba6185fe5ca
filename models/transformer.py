"""Lantern's small Transformer: a ``MarianMTModel`` built from a ``MarianConfig`` preset.

No hand-written Transformer: Marian's architecture (post-norm encoder-decoder, sinusoidal positions,
scaled embeddings) is what OPUS-MT uses, and plain ``transformers`` loads the result. Source and
target vocabularies are separate (zh->en) or shared with tied embeddings (en->de joint BPE).
"""

from __future__ import annotations

from transformers import MarianConfig, MarianMTModel

from models.train_config import ModelConfig


def build_transformer(m: ModelConfig, src_vocab: int, tgt_vocab: int, shared_vocab: bool) -> MarianMTModel:
    if m.embed_dim % m.heads:
        raise ValueError(f"embed_dim {m.embed_dim} is not divisible by heads {m.heads}")
    config = MarianConfig(
        vocab_size=src_vocab,
        decoder_vocab_size=tgt_vocab,
        share_encoder_decoder_embeddings=shared_vocab,
        d_model=m.embed_dim,
        encoder_layers=m.encoder_layers,
        decoder_layers=m.decoder_layers,
        encoder_attention_heads=m.heads,
        decoder_attention_heads=m.heads,
        encoder_ffn_dim=m.ffn_dim,
        decoder_ffn_dim=m.ffn_dim,
        dropout=m.dropout,
        attention_dropout=m.attention_dropout,
        activation_dropout=m.activation_dropout,
        activation_function="relu",
        max_position_embeddings=max(256, m.max_source_tokens * 2),
        scale_embedding=True,
        tie_word_embeddings=True,  # decoder input embeddings = output layer
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        forced_eos_token_id=2,
    )
    config.max_source_tokens = m.max_source_tokens
    return MarianMTModel(config)
