"""Attribution methods as small objects: what each is, what it costs, and how it runs.

Every method turns an ``Objective`` (the per-step scores of a fixed output as a function of the input
embeddings) into scores per explained step and input token. Adding a method is one entry in ``METHODS``:

    METHODS["my_method"] = GradientMethod("my_method", "My method", "What it measures.", ...)

The engines do the batching (``explain.gradients``, ``explain.perturbation``); ``explain.attribution``
chooses the rows, runs a method and packs the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from explain.alti import alti_plus
from explain.attention import attention_stacks
from explain.gradients import Path, ig_path, path_attributions, point_path, shap_path, smooth_path
from explain.mixing import attention_norms, value_zeroing
from explain.objective import Objective, step_score
from explain.perturbation import lime, occlusion, shapley_sampling

Progress = Callable[[float], None] | None
EMBEDDING_AGGREGATIONS = ("sum", "l2", "mean", "max")


@dataclass(frozen=True)
class Settings:
    """How a method runs; each method reads the settings it has."""

    n_steps: int = 32  # integration points (integrated gradients)
    n_samples: int = 25  # samples (Gradient SHAP, SmoothGrad, Shapley value sampling, LIME)
    noise_std: float = 0.0  # input noise (Gradient SHAP)
    embedding_agg: str | None = None  # how a token's per-dimension scores combine; None: the method's default
    with_prefix: bool = True  # also attribute to the decoder inputs (the target prefix)
    seed: int = 0
    baseline: str = "pad"  # what a removed token becomes: "pad" or "unk" (see ``Objective``)
    noise_level: float = 0.15  # SmoothGrad's noise: σ as a share of the range of the input's embeddings

    def __post_init__(self) -> None:
        for name in ("n_steps", "n_samples", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, not {value!r}")
        if isinstance(self.noise_std, bool) or not isinstance(self.noise_std, int | float):
            raise ValueError(f"noise_std must be a number, not {self.noise_std!r}")
        if not isinstance(self.with_prefix, bool):
            raise ValueError(f"with_prefix must be True or False, not {self.with_prefix!r}")
        if not 1 <= self.n_steps <= 1024 or not 1 <= self.n_samples <= 1024:
            raise ValueError("n_steps and n_samples must be between 1 and 1024")
        if not 0 <= self.noise_std <= 10:  # also refuses NaN
            raise ValueError(f"noise_std must be between 0 and 10, not {self.noise_std}")
        if isinstance(self.noise_level, bool) or not isinstance(self.noise_level, int | float):
            raise ValueError(f"noise_level must be a number, not {self.noise_level!r}")
        if not 0 <= self.noise_level <= 1:
            raise ValueError(
                f"noise_level must be between 0 and 1 (a share of the embeddings' range), not {self.noise_level}"
            )
        if self.embedding_agg is not None and self.embedding_agg not in EMBEDDING_AGGREGATIONS:
            choices = ", ".join(EMBEDDING_AGGREGATIONS)
            raise ValueError(f"unknown embedding aggregation {self.embedding_agg!r}; choose one of {choices}")


@dataclass(frozen=True)
class Scores:
    """A method's result; rows that were not explained are 0."""

    src: torch.Tensor  # [T, S]
    prefix: torch.Tensor | None  # [T, P] (None: the method does not attribute to the prefix)
    delta: torch.Tensor | None = None  # [T] completeness gap: Σ scores − (f(x) − f(baseline))


@dataclass(frozen=True)
class Method:
    """One attribution method: its id, how it reads, and whether its scores are signed."""

    id: str
    title: str
    description: str
    family: str  # "gradient" | "perturbation" | "attention"
    signed: bool  # scores can be negative (diverging colour scale)
    has_delta: bool = False  # reports a completeness gap

    def passes(self, n_src: int, n_tgt: int, settings: Settings) -> int:
        """Sequences the model runs for one attribution (the cost shown before a run)."""
        raise NotImplementedError

    def run(self, obj: Objective, rows: list[int], settings: Settings, progress: Progress = None) -> Scores:
        raise NotImplementedError


def _reduce(attr: torch.Tensor, how: str) -> torch.Tensor:
    """[..., d] -> [...] over the embedding dimension."""
    if how == "sum":
        return attr.sum(-1)
    if how == "l2":
        return attr.norm(dim=-1)
    if how == "mean":
        return attr.mean(-1)
    return attr.max(-1).values


@dataclass(frozen=True)
class GradientMethod(Method):
    """Gradients of every explained step at points on a path from the baseline to the input, batched.

    ``path``: where gradients are taken; ``multiply``: "none" (the gradient), "input" (× x) or "delta"
    (× (x − baseline)); ``absolute``: report magnitudes (saliency).
    """

    path: Callable[[Settings, torch.Generator], Path] = lambda s, g: point_path()
    multiply: str = "none"
    absolute: bool = False
    default_agg: str = "sum"
    copies: Callable[[Settings], int] = lambda s: 1  # copies of the input per explained step

    def passes(self, n_src: int, n_tgt: int, settings: Settings) -> int:
        return n_tgt * self.copies(settings) + (2 if self.has_delta else 0)

    def make_path(self, obj: Objective, settings: Settings, generator: torch.Generator) -> Path:
        return self.path(settings, generator)

    def run(self, obj: Objective, rows: list[int], settings: Settings, progress: Progress = None) -> Scores:
        generator = torch.Generator().manual_seed(settings.seed)
        path = self.make_path(obj, settings, generator)
        a_src, a_dec = path_attributions(obj, rows, path, self.multiply, generator, progress)
        if not settings.with_prefix:
            a_dec = torch.zeros_like(a_dec)
        if self.absolute:
            a_src, a_dec = a_src.abs(), a_dec.abs()
        agg = settings.embedding_agg or self.default_agg
        src, prefix = torch.zeros(obj.n_steps, a_src.shape[1]), torch.zeros(obj.n_steps, obj.n_prefix)
        src[rows], prefix[rows] = _reduce(a_src, agg), _reduce(a_dec, agg)
        delta = completeness_gap(obj, rows, a_src, a_dec, settings.with_prefix) if self.has_delta else None
        return Scores(src, prefix if settings.with_prefix else None, delta)


@dataclass(frozen=True)
class SmoothGradMethod(GradientMethod):
    """SmoothGrad (Smilkov et al. 2017): the gradient averaged over ``n_samples`` copies of the input embeddings
    with Gaussian noise, σ = ``noise_level`` × (max − min) of the input's embeddings; with noise 0 it is saliency."""

    def make_path(self, obj: Objective, settings: Settings, generator: torch.Generator) -> Path:
        return smooth_path(settings.n_samples, settings.noise_level, obj.src_embeds, obj.dec_embeds, generator)


@torch.no_grad()
def completeness_gap(
    obj: Objective, rows: list[int], a_src: torch.Tensor, a_dec: torch.Tensor, with_prefix: bool
) -> torch.Tensor:
    """Σ attributions − (score(input) − score(baseline)) per step [T]; 0 for rows not explained."""
    base_dec = obj.dec_base if with_prefix else obj.dec_embeds
    ends = obj(torch.stack([obj.src_embeds, obj.src_base]), torch.stack([obj.dec_embeds, base_dec]))
    change = ends[0] - ends[1]
    gap = torch.zeros(obj.n_steps)
    total = a_src.sum((1, 2)) + (a_dec.sum((1, 2)) if with_prefix else 0)
    gap[rows] = total - change[rows]
    return gap


@dataclass(frozen=True)
class DeepLiftMethod(Method):
    """Captum's LayerDeepLift on the source embeddings, one call per explained step.

    Source only: Captum's LayerDeepLift takes one layer, and the decoder inputs stay as they are. An LSTM
    computes its gates inside ``nn.LSTM``, which DeepLIFT's rescale rule cannot see through.
    """

    def passes(self, n_src: int, n_tgt: int, settings: Settings) -> int:
        return 2 * n_tgt

    def run(self, obj: Objective, rows: list[int], settings: Settings, progress: Progress = None) -> Scores:
        from captum.attr import LayerDeepLift

        if any(isinstance(m, nn.RNNBase) for m in obj.lm.model.modules()):
            raise ValueError(
                "DeepLIFT needs the model's nonlinearities as modules; an LSTM computes its gates inside "
                "nn.LSTM. Use integrated gradients."
            )
        if not obj.lm.is_seq2seq():
            raise ValueError("DeepLIFT here explains encoder-decoder models; use integrated gradients")

        class Step(nn.Module):  # Captum's DeepLIFT wants an nn.Module returning one score per example
            def __init__(self) -> None:
                super().__init__()
                self.model, self.row = obj.lm.model, 0

            def forward(self, src_ids: torch.Tensor) -> torch.Tensor:
                n, row = len(src_ids), self.row
                logits = self.model(
                    input_ids=src_ids,
                    attention_mask=torch.ones_like(src_ids),
                    decoder_input_ids=obj.dec_ids.expand(n, -1),
                ).logits
                alt = None if obj.alt_ids is None else obj.alt_ids[row].expand(n)
                return step_score(logits.float().log_softmax(-1)[:, row], obj.tgt_ids[row].expand(n), obj.target, alt)

        step = Step()
        deeplift = LayerDeepLift(step, obj.src_module)
        src_ids = obj.src_ids[None]
        baseline = torch.full_like(src_ids, obj.lm.src_tokenizer.pad_token_id)
        out = []
        for row in rows:
            step.row = row
            with obj.lm.lock:  # Captum's DeepLIFT hooks every nonlinearity of the shared model for the call
                out.append(deeplift.attribute(src_ids, baselines=baseline)[0].detach())
            if progress:
                progress(len(out) / len(rows))
        raw = torch.stack(out)  # [R, S, d]
        src = torch.zeros(obj.n_steps, len(obj.src_ids))
        src[rows] = _reduce(raw, settings.embedding_agg or "sum")
        delta = completeness_gap(obj, rows, raw, torch.zeros(len(rows), obj.n_prefix, raw.shape[-1]), with_prefix=False)
        return Scores(src, None, delta)


@dataclass(frozen=True)
class PerturbationMethod(Method):
    """Scores from the model run on masked inputs (a removed token becomes the baseline), all steps at once."""

    engine: Callable[[Objective, Settings, Progress], torch.Tensor] = lambda obj, s, p: occlusion(obj, s.with_prefix, p)
    masks: Callable[[int, Settings], int] = lambda n_features, s: n_features + 1

    def passes(self, n_src: int, n_tgt: int, settings: Settings) -> int:
        return self.masks(n_src + n_tgt, settings)

    def run(self, obj: Objective, rows: list[int], settings: Settings, progress: Progress = None) -> Scores:
        values = self.engine(obj, settings, progress)  # [T, S (+ P)]
        s = len(obj.src_ids)
        src, prefix = torch.zeros(obj.n_steps, s), torch.zeros(obj.n_steps, obj.n_prefix)
        src[rows] = values[rows, :s]
        if settings.with_prefix:
            prefix[rows] = values[rows, s:]
        return Scores(src, prefix if settings.with_prefix else None)


@dataclass(frozen=True)
class AttentionMethod(Method):
    """Attention averaged over layers and heads, read from one teacher-forced pass: a baseline to compare with."""

    def passes(self, n_src: int, n_tgt: int, settings: Settings) -> int:
        return 1

    def run(self, obj: Objective, rows: list[int], settings: Settings, progress: Progress = None) -> Scores:
        cross, _, dec_self = attention_stacks(obj.lm, obj.src_ids.tolist(), obj.tgt_ids.tolist())
        if cross is not None:
            src = torch.from_numpy(cross.mean((0, 1)))
            prefix = None if dec_self is None else torch.from_numpy(dec_self.mean((0, 1)))
        else:  # decoder-only: the positions that predict each token, over prompt and prefix
            s = len(obj.src_ids)
            whole = torch.from_numpy(dec_self.mean((0, 1)))[s - 1 :]
            src, prefix = whole[:, :s], whole[:, s:]
        return Scores(src, prefix)


# Layers a value-zeroing cost estimate assumes: one pass per input position and layer, each stopped at its layer
# (about half the model's layers on average); the model is not known where the cost is shown.
ASSUMED_LAYERS = 6


@dataclass(frozen=True)
class MixingMethod(Method):
    """A per-layer context-mixing map (``explain.mixing``) averaged over the layers: the cross-attention of an
    encoder-decoder (source only), the causal self-attention over prompt and prefix of a decoder-only model."""

    maps: Callable[[Objective, Progress], torch.Tensor] = lambda obj, p: attention_norms(
        obj.lm, obj.src_ids.tolist(), obj.tgt_ids.tolist()
    )
    per_position: bool = False  # one pass per input position and layer (value zeroing) rather than one pass

    def passes(self, n_src: int, n_tgt: int, settings: Settings) -> int:
        return ASSUMED_LAYERS // 2 * (n_src + n_tgt + 1) if self.per_position else 1

    def run(self, obj: Objective, rows: list[int], settings: Settings, progress: Progress = None) -> Scores:
        mean = self.maps(obj, progress).mean(0).cpu()  # [T, K]
        s = len(obj.src_ids)
        if obj.lm.is_seq2seq():
            return Scores(mean, None)
        return Scores(mean[:, :s], mean[:, s:])


@dataclass(frozen=True)
class AltiMethod(Method):
    """ALTI+ (``explain.alti``): the contributions rolled out through every layer, read at the last one: the source
    tokens' and the prefix's shares of each step, together summing to 1 (with the prefix dropped, the source's)."""

    def passes(self, n_src: int, n_tgt: int, settings: Settings) -> int:
        return 1

    def run(self, obj: Objective, rows: list[int], settings: Settings, progress: Progress = None) -> Scores:
        final = alti_plus(obj.lm, obj.src_ids.tolist(), obj.tgt_ids.tolist())[-1]  # [T, S + P]
        s = len(obj.src_ids)
        if progress:
            progress(1.0)
        return Scores(final[:, :s], final[:, s:] if settings.with_prefix else None)


def _value_zeroing(obj: Objective, progress: Progress) -> torch.Tensor:
    return value_zeroing(obj.lm, obj.src_ids.tolist(), obj.tgt_ids.tolist(), progress)


def _shapley(obj: Objective, s: Settings, progress: Progress) -> torch.Tensor:
    return shapley_sampling(obj, s.with_prefix, s.n_samples, torch.Generator().manual_seed(s.seed), progress)


def _lime(obj: Objective, s: Settings, progress: Progress) -> torch.Tensor:
    return lime(obj, s.with_prefix, s.n_samples, torch.Generator().manual_seed(s.seed), progress=progress)


METHODS: dict[str, Method] = {
    m.id: m
    for m in [
        GradientMethod(
            "saliency",
            "Saliency",
            "Size (L2 norm) of the gradient at each input token: how sensitive the score is to it.",
            "gradient",
            signed=False,
            absolute=True,
            default_agg="l2",
        ),
        GradientMethod(
            "input_x_gradient",
            "Input × gradient",
            "Embedding times gradient, summed: each token's first-order share of the score.",
            "gradient",
            signed=True,
            multiply="input",
        ),
        GradientMethod(
            "integrated_gradients",
            "Integrated gradients",
            "Gradients averaged on the path from padding to the input, times the difference; they add up "
            "to the score's change (the delta says how closely).",
            "gradient",
            signed=True,
            has_delta=True,
            path=lambda s, g: ig_path(s.n_steps),
            multiply="delta",
            copies=lambda s: s.n_steps,
        ),
        DeepLiftMethod(
            "deeplift",
            "DeepLIFT",
            "Differences from the padding baseline propagated back with DeepLIFT's rescale rule, to the "
            "source (Transformers only: an LSTM's gates are not separate modules).",
            "gradient",
            signed=True,
            has_delta=True,
        ),
        GradientMethod(
            "gradient_shap",
            "Gradient SHAP",
            "Input × gradient at random points between padding and a noisy input, averaged: an estimate "
            "of SHAP values.",
            "gradient",
            signed=True,
            path=lambda s, g: shap_path(s.n_samples, s.noise_std, g),
            multiply="delta",
            copies=lambda s: s.n_samples,
        ),
        SmoothGradMethod(
            "smoothgrad",
            "SmoothGrad",
            "Size (L2 norm) of the gradient averaged over noisy copies of the input embeddings (σ = noise level × "
            "their range; Smilkov et al. 2017): saliency with less noise, used for word alignment by Ding et al. 2019.",
            "gradient",
            signed=False,
            absolute=True,
            default_agg="l2",
            copies=lambda s: s.n_samples,
        ),
        PerturbationMethod(
            "occlusion",
            "Occlusion",
            "Replace one input token at a time by padding and measure how much the score drops (feature ablation).",
            "perturbation",
            signed=True,
        ),
        PerturbationMethod(
            "shapley_value_sampling",
            "Shapley value sampling",
            "Add tokens in random orders and average how much each one changes the score.",
            "perturbation",
            signed=True,
            engine=_shapley,
            masks=lambda n, s: s.n_samples * (n + 1),
        ),
        PerturbationMethod(
            "lime",
            "LIME",
            "Fit a weighted linear model of the score on random subsets of the tokens; its weights are the scores.",
            "perturbation",
            signed=True,
            engine=_lime,
            masks=lambda n, s: s.n_samples,
        ),
        AttentionMethod(
            "attention",
            "Attention",
            "Cross-attention averaged over layers and heads: where the decoder looked, a baseline rather "
            "than an explanation.",
            "attention",
            signed=False,
        ),
        MixingMethod(
            "attention_norms",
            "Attention norms",
            "Norm of what each input token adds through the attention, ‖Σ_h α·f_h(x)‖ with f the value through "
            "the output projection (Kobayashi et al. 2020), averaged over layers (Transformers only).",
            "attention",
            signed=False,
        ),
        MixingMethod(
            "value_zeroing",
            "Value zeroing",
            "Zero one input token's value vectors in a layer's attention and measure how much the layer's output "
            "changes (cosine distance, rows sum to 1; Mohebbi et al. 2023), averaged over layers (Transformers "
            "only).",
            "attention",
            signed=False,
            maps=_value_zeroing,
            per_position=True,
        ),
        AltiMethod(
            "alti_plus",
            "ALTI+",
            "Each input token's share of every layer's output (how close its term of the attention block's "
            "decomposition is to the output, in L1), rolled out through the encoder and decoder: the source's and "
            "the prefix's contributions to each step, summing to 1 (Ferrando et al. 2022; Transformers only).",
            "attention",
            signed=False,
        ),
    ]
}
ALIASES = {"feature_ablation": "occlusion"}


def get_method(method: str) -> Method:
    """The method by id (or alias); ``ValueError`` naming the ids otherwise."""
    found = METHODS.get(ALIASES.get(method, method))
    if found is None:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return found


def list_methods() -> list[Method]:
    return list(METHODS.values())
