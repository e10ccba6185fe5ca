"""The classic encoder-decoder: embedding -> bidirectional LSTM -> attentive LSTM decoder -> softmax.

A transformers model (``PreTrainedModel`` + ``GenerationMixin``) registered with the Auto classes,
so ``AutoModelForSeq2SeqLM.from_pretrained(path)`` loads it once this module is imported, and
``generate()`` gives greedy, beam and sampling decoding.

Attention: additive scoring (Bahdanau et al. 2015), ``score(q, k) = vᵀ tanh(W_q q + W_k k)``,
applied in Luong et al.'s (2015) order: the decoder LSTM first reads the previous target token,
then its new state attends over the source, and the attentional vector
``tanh(W_c [h_t; c_t])`` predicts token t. So α_t is computed from the state that directly
predicts y_t (it reads as the alignment of y_t), and, without input feeding, the decoder LSTM
runs over the whole target prefix in one fused call (training is several times faster on a CPU
than a step-by-step loop). Additive scoring rather than Luong's dot/general form because it
trains more reliably at small hidden sizes. The output projection is tied to the target
embeddings (Press & Wolf 2017), which helps on a 26k-sentence corpus.

Attention weights come back as HF ``cross_attentions``: one layer, one head, ``[batch, 1, tgt, src]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForSeq2SeqLM,
    GenerationMixin,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, ModelOutput, Seq2SeqLMOutput
from transformers.modeling_utils import slice_logits_to_keep


class LstmAttnConfig(PretrainedConfig):
    """Sizes of the LSTM encoder-decoder; saved as ``config.json``."""

    model_type = "lantern-lstm-attn"

    def __init__(
        self,
        src_vocab_size: int = 8000,
        tgt_vocab_size: int = 8000,
        embed_dim: int = 256,
        hidden_size: int = 512,  # decoder state; the encoder uses hidden_size // 2 per direction
        encoder_layers: int = 1,
        decoder_layers: int = 1,
        attention_dim: int = 256,
        dropout: float = 0.3,
        max_source_tokens: int = 128,  # inputs are truncated to this many tokens
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        decoder_start_token_id: int = 1,
        **kwargs,
    ) -> None:
        self.src_vocab_size = src_vocab_size
        self.tgt_vocab_size = tgt_vocab_size
        self.vocab_size = tgt_vocab_size  # what generation utilities read
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.attention_dim = attention_dim
        self.dropout = dropout
        self.max_source_tokens = max_source_tokens
        kwargs["is_encoder_decoder"] = True
        kwargs["use_cache"] = False  # no key/value cache: each step re-runs the (cheap) decoder
        kwargs.setdefault("tie_word_embeddings", False)  # tying is done in forward, not by HF
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=decoder_start_token_id,
            **kwargs,
        )


class AdditiveAttention(nn.Module):
    """Bahdanau scoring, masked softmax over source positions."""

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, attention_dim, bias=False)
        self.key = nn.Linear(key_dim, attention_dim)
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries [B, T, Q], keys [B, S, K], mask [B, S] (1 = token) -> context [B, T, K], alphas [B, T, S]."""
        scores = self.v(torch.tanh(self.query(queries)[:, :, None] + self.key(keys)[:, None]))
        scores = scores.squeeze(-1).masked_fill(~mask[:, None, :].bool(), float("-inf"))
        alphas = scores.softmax(-1)  # padded source positions get exactly 0
        return alphas @ keys, alphas


def _lengths(mask: torch.Tensor) -> torch.Tensor:
    """Lengths of right-padded rows; left padding or holes raise ``ValueError``."""
    mask = mask.long()
    if not torch.equal(mask.cumprod(1), mask):
        raise ValueError("attention_mask must be right-padded (ones then zeros) for the LSTM")
    lengths = mask.sum(1)
    if (lengths == 0).any():
        raise ValueError("every source sequence needs at least one token")
    return lengths


class LstmEncoder(nn.Module):
    """Source embeddings -> bidirectional LSTM; padded positions output 0."""

    main_input_name = "input_ids"

    def __init__(self, config: LstmAttnConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.src_vocab_size, config.embed_dim, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.embed_dim,
            config.hidden_size // 2,
            num_layers=config.encoder_layers,
            bidirectional=True,
            batch_first=True,
            dropout=config.dropout if config.encoder_layers > 1 else 0.0,
        )

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        """input_ids [B, S] (or inputs_embeds [B, S, E]) -> last_hidden_state [B, S, hidden]."""
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("pass input_ids or inputs_embeds")
            inputs_embeds = self.embed_tokens(input_ids)
        if attention_mask is None:
            attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
        lengths = _lengths(attention_mask)
        embeds = self.dropout(inputs_embeds)
        packed = nn.utils.rnn.pack_padded_sequence(embeds, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=embeds.shape[1])
        return BaseModelOutput(last_hidden_state=self.dropout(out))


class LstmDecoder(nn.Module):
    """Target embeddings -> LSTM -> additive attention -> attentional vector -> tied logits."""

    def __init__(self, config: LstmAttnConfig) -> None:
        super().__init__()
        h, e = config.hidden_size, config.embed_dim
        self.n_layers = config.decoder_layers
        self.embed_tokens = nn.Embedding(config.tgt_vocab_size, e, padding_idx=config.pad_token_id)
        self.dropout = nn.Dropout(config.dropout)
        self.bridge = nn.Linear(h, h * config.decoder_layers)  # final encoder states -> h_0
        self.lstm = nn.LSTM(
            e,
            h,
            num_layers=config.decoder_layers,
            batch_first=True,
            dropout=config.dropout if config.decoder_layers > 1 else 0.0,
        )
        self.attention = AdditiveAttention(h, h, config.attention_dim)
        self.combine = nn.Linear(2 * h, e)  # [h_t; c_t] -> attentional vector, embedding-sized
        self.output_bias = nn.Parameter(torch.zeros(config.tgt_vocab_size))

    def initial_state(self, enc: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bridge from the final forward state (last token) and final backward state (first token)."""
        half = enc.shape[-1] // 2
        last = enc[torch.arange(len(enc)), lengths - 1, :half]
        first = enc[:, 0, half:]
        h0 = torch.tanh(self.bridge(torch.cat([last, first], -1)))  # [B, layers * h]
        h0 = h0.view(len(enc), self.n_layers, -1).transpose(0, 1).contiguous()
        return h0, torch.zeros_like(h0)

    def forward(
        self, embeds: torch.Tensor, enc: torch.Tensor, src_mask: torch.Tensor, logits_to_keep: int | torch.Tensor = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder-input embeds [B, T, E], enc [B, S, h], src_mask [B, S] -> logits [B, T, V], alphas [B, T, S]."""
        state = self.initial_state(enc, _lengths(src_mask))
        out, _ = self.lstm(self.dropout(embeds), state)
        context, alphas = self.attention(out, enc, src_mask)
        attentional = self.dropout(torch.tanh(self.combine(torch.cat([out, context], -1))))
        attentional = slice_logits_to_keep(attentional, logits_to_keep)  # project only the positions asked for
        logits = F.linear(attentional, self.embed_tokens.weight, self.output_bias)
        return logits, alphas


class LstmAttnForConditionalGeneration(PreTrainedModel, GenerationMixin):
    """Bidirectional-LSTM encoder, attentive LSTM decoder; HF seq2seq interface."""

    config_class = LstmAttnConfig
    base_model_prefix = "lstm"
    main_input_name = "input_ids"

    def __init__(self, config: LstmAttnConfig) -> None:
        super().__init__(config)
        self.encoder = LstmEncoder(config)
        self.decoder = LstmDecoder(config)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=module.embedding_dim**-0.5)
            if module.padding_idx is not None:
                init.zeros_(module.weight[module.padding_idx])
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LSTM):
            for name, param in module.named_parameters():
                if "weight" in name:
                    init.uniform_(param, -0.1, 0.1)
                else:  # forget-gate bias 1 (Jozefowicz et al. 2015), others 0
                    init.zeros_(param)
                    n = param.shape[0] // 4
                    init.ones_(param[n : 2 * n])
        elif isinstance(module, LstmDecoder):
            init.zeros_(module.output_bias)

    def generate(self, *args: object, **kwargs: object) -> torch.LongTensor | ModelOutput:
        """``GenerationMixin.generate`` without a key/value cache.

        transformers 5 builds an ``EncoderDecoderCache`` and feeds only the newest token unless
        ``use_cache=False`` reaches ``generate`` (``config.use_cache`` is not enough); this
        decoder has no cache, so it must see the whole prefix at every step.
        """
        kwargs["use_cache"] = False
        return super().generate(*args, **kwargs)

    def get_encoder(self) -> LstmEncoder:
        return self.encoder

    def get_decoder(self) -> LstmDecoder:
        return self.decoder

    def get_input_embeddings(self) -> nn.Embedding:
        return self.encoder.embed_tokens

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        encoder_outputs: BaseModelOutput | tuple | None = None,
        labels: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        decoder_inputs_embeds: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        output_attentions: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        """Teacher-forced pass: logits [B, T, V]; cross_attentions ([B, 1, T, S],) if asked."""
        if attention_mask is None:
            if input_ids is not None:
                attention_mask = input_ids.ne(self.config.pad_token_id).long()
            elif inputs_embeds is not None:
                attention_mask = torch.ones(inputs_embeds.shape[:2], dtype=torch.long, device=inputs_embeds.device)
            else:
                raise ValueError("pass attention_mask with encoder_outputs")
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask, inputs_embeds=inputs_embeds)
        elif isinstance(encoder_outputs, tuple):
            encoder_outputs = BaseModelOutput(last_hidden_state=encoder_outputs[0])
        if decoder_inputs_embeds is None:
            if decoder_input_ids is None:
                if labels is None:
                    raise ValueError("pass decoder_input_ids, decoder_inputs_embeds or labels")
                decoder_input_ids = shift_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)
            decoder_inputs_embeds = self.decoder.embed_tokens(decoder_input_ids)
        if labels is not None and not (isinstance(logits_to_keep, int) and logits_to_keep == 0):
            raise ValueError("a loss needs the logits of every position: pass labels or logits_to_keep, not both")
        enc = encoder_outputs.last_hidden_state
        logits, alphas = self.decoder(decoder_inputs_embeds, enc, attention_mask, logits_to_keep)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            encoder_last_hidden_state=enc,
            cross_attentions=(alphas[:, None],) if output_attentions else None,
        )


def shift_right(labels: torch.Tensor, pad_id: int, start_id: int) -> torch.Tensor:
    """[y1 .. yT] -> [start, y1 .. yT-1]; -100 (ignored label) becomes pad."""
    shifted = labels.new_full(labels.shape, pad_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = start_id
    return shifted.masked_fill(shifted == -100, pad_id)


AutoConfig.register(LstmAttnConfig.model_type, LstmAttnConfig)
AutoModelForSeq2SeqLM.register(LstmAttnConfig, LstmAttnForConditionalGeneration)
