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

Incremental decoding: ``generate()`` carries the decoder LSTM's state (``LstmDecoderCache``, the
transformers ``cache`` convention of stateful models) from step to step, so each new token costs one
LSTM step instead of a pass over the whole prefix; beam search reorders it with the beams.

Attention editing: an ``AttentionEdit`` set on a model (``with_attention_edit``, on a private copy)
scales the weight one output position gives one source token and renormalises the row, at absolute
output positions whether or not a cache is used.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput
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
        kwargs["use_cache"] = True  # generate() carries the decoder state (LstmDecoderCache)
        kwargs.setdefault("tie_word_embeddings", False)  # tying is done in forward, not by HF
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            decoder_start_token_id=decoder_start_token_id,
            **kwargs,
        )


@dataclass(frozen=True)
class AttentionEdit:
    """Scale the attention output position ``step`` pays to source token ``src_index``; the row is renormalised,
    so the weight taken from one token goes to the others (scale 0 removes the token from that step's view)."""

    step: int
    src_index: int
    scale: float

    MAX_SCALE = 1000.0  # beyond this one token takes the whole row anyway; larger values only risk overflow

    def __post_init__(self) -> None:
        if self.step < 0 or self.src_index < 0:
            raise ValueError("an attention edit needs a non-negative output step and source position")
        if not 0 <= self.scale <= self.MAX_SCALE:  # also refuses NaN
            raise ValueError(f"the attention scale must be between 0 and {self.MAX_SCALE:g}, not {self.scale}")

    def apply(self, weights: torch.Tensor, first_position: int = 0) -> torch.Tensor:
        """weights [..., q, k] whose query rows are output positions first_position, first_position + 1, ..."""
        row = self.step - first_position
        if not 0 <= row < weights.shape[-2] or self.src_index >= weights.shape[-1]:
            return weights
        w = weights.clone()
        w[..., row, self.src_index] = w[..., row, self.src_index] * self.scale
        w[..., row, :] = w[..., row, :] / w[..., row, :].sum(-1, keepdim=True).clamp(min=1e-12)
        return w


class AdditiveAttention(nn.Module):
    """Bahdanau scoring, masked softmax over source positions."""

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, attention_dim, bias=False)
        self.key = nn.Linear(key_dim, attention_dim)
        self.v = nn.Linear(attention_dim, 1, bias=False)
        self.edit: AttentionEdit | None = None  # set only on private copies (``with_attention_edit``)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, first_position: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries [B, T, Q] (output positions first_position...), keys [B, S, K], mask [B, S] (1 = token)
        -> context [B, T, K], alphas [B, T, S]."""
        scores = self.v(torch.tanh(self.query(queries)[:, :, None] + self.key(keys)[:, None]))
        scores = scores.squeeze(-1).masked_fill(~mask[:, None, :].bool(), float("-inf"))
        alphas = scores.softmax(-1)  # padded source positions get exactly 0
        if self.edit is not None:
            alphas = self.edit.apply(alphas, first_position)
        return alphas @ keys, alphas


class LstmDecoderCache:
    """The decoder LSTM's state after the target tokens read so far (what incremental decoding carries).

    ``h``, ``c``: [layers, batch, hidden]. ``reorder_cache`` follows beam search's choice of beams.
    """

    def __init__(self, h: torch.Tensor, c: torch.Tensor, length: int) -> None:
        self.h, self.c, self.length = h, c, length

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.length

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.h = self.h.index_select(1, beam_idx.to(self.h.device))
        self.c = self.c.index_select(1, beam_idx.to(self.c.device))


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


class TiedProjection(nn.Module):
    """The output layer, tied to the target embeddings: a module without weights of its own, so that code that
    needs the vectors entering the output layer (training-data influence) can hook it like a ``Linear``."""

    def forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight, bias)


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
        self.project = TiedProjection()

    def initial_state(self, enc: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bridge from the final forward state (last token) and final backward state (first token)."""
        half = enc.shape[-1] // 2
        last = enc[torch.arange(len(enc)), lengths - 1, :half]
        first = enc[:, 0, half:]
        h0 = torch.tanh(self.bridge(torch.cat([last, first], -1)))  # [B, layers * h]
        h0 = h0.view(len(enc), self.n_layers, -1).transpose(0, 1).contiguous()
        return h0, torch.zeros_like(h0)

    def forward(
        self,
        embeds: torch.Tensor,
        enc: torch.Tensor,
        src_mask: torch.Tensor,
        logits_to_keep: int | torch.Tensor = 0,
        cache: LstmDecoderCache | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, LstmDecoderCache]:
        """Decoder-input embeds [B, T, E], enc [B, S, h], src_mask [B, S]
        -> logits [B, T, V], alphas [B, T, S], the state after these T tokens.

        With ``cache`` the T tokens continue the target read so far (incremental decoding); without, they
        start from the bridge of the encoder's final states.
        """
        if cache is None:
            state, first = self.initial_state(enc, _lengths(src_mask)), 0
        else:
            state, first = (cache.h, cache.c), cache.length
        out, (h, c) = self.lstm(self.dropout(embeds), state)
        context, alphas = self.attention(out, enc, src_mask, first_position=first)
        attentional = self.dropout(torch.tanh(self.combine(torch.cat([out, context], -1))))
        attentional = slice_logits_to_keep(attentional, logits_to_keep)  # project only the positions asked for
        logits = self.project(attentional, self.embed_tokens.weight, self.output_bias)
        return logits, alphas, LstmDecoderCache(h, c, first + embeds.shape[1])


class LstmAttnForConditionalGeneration(PreTrainedModel, GenerationMixin):
    """Bidirectional-LSTM encoder, attentive LSTM decoder; HF seq2seq interface."""

    config_class = LstmAttnConfig
    base_model_prefix = "lstm"
    main_input_name = "input_ids"
    _is_stateful = True  # the cache is a recurrent state: it cannot be cut back to an earlier length

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

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        """No key/value cache: ``forward`` creates and returns its own ``LstmDecoderCache``."""
        return False

    def with_attention_edit(self, edit: AttentionEdit | None) -> LstmAttnForConditionalGeneration:
        """Set (or clear) the attention edit of this model; use it on a private copy, never a shared model."""
        self.decoder.attention.edit = edit
        return self

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
        cache: LstmDecoderCache | None = None,
        use_cache: bool | None = None,
        **kwargs,
    ) -> Seq2SeqLMOutput:
        """Teacher-forced pass: logits [B, T, V]; cross_attentions ([B, 1, T, S],) if asked.

        ``use_cache``: also return the decoder state (``cache``); given a ``cache``, the decoder inputs continue
        from it (``generate()`` then passes only the newest token).
        """
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
        logits, alphas, state = self.decoder(decoder_inputs_embeds, enc, attention_mask, logits_to_keep, cache)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
        return Seq2SeqLMOutput(
            loss=loss,
            logits=logits,
            encoder_last_hidden_state=enc,
            cross_attentions=(alphas[:, None],) if output_attentions else None,
            cache=state if use_cache else None,
        )


def shift_right(labels: torch.Tensor, pad_id: int, start_id: int) -> torch.Tensor:
    """[y1 .. yT] -> [start, y1 .. yT-1]; -100 (ignored label) becomes pad."""
    shifted = labels.new_full(labels.shape, pad_id)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = start_id
    return shifted.masked_fill(shifted == -100, pad_id)


AutoConfig.register(LstmAttnConfig.model_type, LstmAttnConfig)
AutoModelForSeq2SeqLM.register(LstmAttnConfig, LstmAttnForConditionalGeneration)
