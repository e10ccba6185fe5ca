import streamlit as st

from explain.alignment import (
    COMBINATIONS,
    EXTRACTIONS,
    LAYERED_METHODS,
    STEPS,
    align,
    diagonal_links,
    score_alignments,
    token_words,
)
from explain.attribution import forward_passes
from explain.methods import METHODS
from ui import cache
from ui.fields import ALIGN_EOS, ALIGN_OUTPUTS, ALIGN_SCORES
from ui.state import chart, stop_page
from ui.widgets import ProgressBar, cost_gate, md_escape, page_translation, remember, run_or_explain, sidebar_inputs
from viz.alignment import alignment_heatmap, alignment_lines

EXTRACTION_LABELS = {
    "row": "row argmax (each output word → its best source word)",
    "column": "column argmax (each source word → its best output word)",
    "intersection": "intersection of both directions",
    "union": "union of both directions",
    "grow-diag": "grow-diag (intersection, grown to neighbours)",
    "grow-diag-final": "grow-diag-final (then unaligned words)",
}
EOS_LABELS = {"drop": "dropped before linking", "no link": "best partner: no link"}
COMBINE_LABELS = {
    "directions": "each model's own direction (its rows)",
    "agreement": "agreement: both models' scores multiplied",
    "symmetrised": "the extraction on each model, then grow-diag",
}
STEP_LABELS = {"predicts": "the step that predicts it", "input": "the step where it is the input (Shift-Att)"}
OUTPUT_LABELS = {"gold": "the gold French (forced decoding)", "model": "the model's own translation"}

st.title("Alignments")
inputs = sidebar_inputs()
spec, state = inputs.spec, st.session_state
tr = page_translation(inputs)
if spec.decoder_only:  # the source is the sentence inside the prompt: its tokens must be found there
    try:
        token_words(cache.get_model(spec), tr)
    except ValueError as err:
        st.info(
            f"Word alignments need the sentence's words inside the model's prompt: {md_escape(str(err))}. "
            "Choose a translation model in the sidebar."
        )
        stop_page()
st.caption(
    "Which source word each output word came from, read off an explanation: each output word's scores over the "
    "source words, turned into links by an extraction rule (Koehn et al. 2003 for the combined directions). "
    "On the Hansards gold set, explanations of Lantern's models align worse than plain word order: see the "
    "Evaluate page before trusting a link."
    + (
        " This model reads a prompt: the source is the sentence inside it, the prompt's other tokens (examples, "
        "labels, template) are left out of the map."
        if spec.decoder_only
        else ""
    )
)

found = cache.gold_alignment(inputs.text) if (spec.src_lang, spec.tgt_lang) == ("en", "fr") else None
reference = gold = None
if found is not None:
    index, ref, gold_links = found
    state.setdefault("align.output", "gold")
    output = st.radio(
        f"Hansards sentence {index + 1} of the gold-alignment set: explain",
        ALIGN_OUTPUTS,
        key="align.output",
        format_func=OUTPUT_LABELS.get,
        horizontal=True,
        help="The gold links are between this English sentence and its French reference: they can be scored only "
        "on the reference, which the model is made to produce word by word (forced decoding).",
    )
    if output == "gold":
        reference, gold = ref, gold_links
        tr = run_or_explain(cache.run_forced, spec, inputs.text, ref)
st.markdown(f"**{'Gold French' if reference else 'Output'}:** {md_escape(tr.text)}")

methods = run_or_explain(cache.alignment_methods, spec)
if state.get("align.method") not in methods:
    state["align.method"] = "attention"
c1, c2, c3 = st.columns([2, 1, 2])
method = c1.selectbox("Explanation", methods, key="align.method", format_func=lambda m: METHODS[m].title)
c1.caption(METHODS[method].description)
state.setdefault("align.extraction", "grow-diag")
extraction = c3.selectbox("Extraction", EXTRACTIONS, key="align.extraction", format_func=EXTRACTION_LABELS.get)
eos = c3.radio(
    "End of sentence",
    ALIGN_EOS,
    key="align.eos",
    format_func=EOS_LABELS.get,
    horizontal=True,
    help="With “no link”, the special tokens (end of sentence) are a candidate partner: a word whose best "
    "partner is one of them gets no link (a way to leave words unaligned).",
)
signed = (
    c3.radio(
        "Scores",
        ALIGN_SCORES,
        key="align.scores",
        horizontal=True,
        help="Absolute: |score| summed over a word's pieces (Lantern's published choice). Signed: the pieces' "
        "scores as they are; a negative best score never links. Attention and its variants are never negative.",
    )
    == "signed"
)
step = c3.radio(
    "Each output word read at",
    STEPS,
    key="align.step",
    format_func=STEP_LABELS.get,
    horizontal=True,
    help="Shift-Att (Chen et al. 2020): read an output word's row at the next step, where it is the decoder's "
    "input, rather than at the step that predicts it (which has not seen the word yet). Published for large "
    "models' attention; on the Hansards set it made Lantern's unadapted model worse (README).",
)

reversed_specs = {
    s.name: s for s in cache.available_models() if (s.src_lang, s.tgt_lang) == (spec.tgt_lang, spec.src_lang)
}
reversed_models = list(reversed_specs)
if state.get("align.reverse", "") not in ("", *reversed_models):
    state["align.reverse"] = ""
reverse_name = c1.selectbox(
    "Reverse-direction model",
    ["", *reversed_models],
    key="align.reverse",
    format_func=lambda n: n or "none: this model's scores only",
    disabled=not reversed_models,
    help="A model that translates the other way explains the same pair with source and output swapped; its own "
    "direction (each source word → its best output word) replaces the column argmax, and the symmetrisations "
    "combine the two models, as statistical word aligners do. "
    + ("" if reversed_models else f"No {spec.tgt_lang}→{spec.src_lang} model is installed."),
)

combine = "directions"
if reverse_name:
    combine = c1.radio(
        "Two models combined by",
        COMBINATIONS,
        key="align.combine",
        format_func=COMBINE_LABELS.get,
        help="Directions: this model's rows and the reverse model's rows, combined by the extraction (Koehn et al. "
        "2003). Agreement: p(source word | output word) × p(output word | source word), the product of both models' "
        "normalised scores (Liang et al. 2006), read by the extraction. Symmetrised: the extraction applied to each "
        "model alone, the two alignments combined by grow-diag.",
    )

n_src, n_tgt = len(tr.src_tokens), len(tr.tgt_tokens)
token_passes = forward_passes(method, tr.n_text_tokens, n_tgt) * (n_src + n_tgt)
if not cost_gate(token_passes, "this explanation", "align", (inputs.args(), method, reference)):
    stop_page()
bar = ProgressBar(f"Explaining with {METHODS[method].title}…", token_passes, "align")
maps = run_or_explain(cache.run_alignment_maps, *inputs.args(), method, reference, progress=bar)
bar.done()
reverse = None
if reverse_name:
    rev_spec = reversed_specs[reverse_name]
    if method not in run_or_explain(cache.alignment_methods, rev_spec):
        st.error(f"{reverse_name} cannot be explained with {METHODS[method].title}: choose another method or none.")
        stop_page()
    bar = ProgressBar(f"Explaining the pair the other way with {reverse_name}…", token_passes, "align.rev")
    # the reverse model is made to produce this source from this output (forced decoding)
    reverse = run_or_explain(
        cache.run_alignment_maps, rev_spec, tr.text, inputs.decoding, method, inputs.text, progress=bar
    )
    bar.done()

if method in LAYERED_METHODS:
    layers = ["mean", *range(len(maps.layers))]
    if state.get("align.layer") not in layers:
        state["align.layer"] = "mean"
    layer = c2.selectbox(
        "Layer", layers, key="align.layer", help="One layer's map, or the mean of the layers (the method's own)."
    )
else:
    layer = "mean"
    c2.caption("This method gives one map (no layers).")

if reverse is not None and str(layer) not in reverse.maps:
    st.error(f"{reverse_name} has no layer {layer}: choose the mean, or a layer both models have.")
    stop_page()
a = run_or_explain(align, maps, layer, extraction, eos == "no link", signed, gold, reverse, step, combine)
remember(
    alignment={
        "method": method,
        "layer": str(layer),
        "extraction": extraction,
        "step": step,
        "reverse": reverse_name,
        "combine": combine,
        "pharaoh": a.pharaoh,
    }
)
if reverse is not None:
    st.caption(
        f"Both models: “row” is {spec.name}'s own direction, “column” {reverse_name}'s (each source word linked to "
        "the output word it scores highest when it is the output); intersection, union and grow-diag combine them."
        if combine == "directions"
        else f"Both models, {COMBINE_LABELS[combine]}: {spec.name} and {reverse_name}."
    )

if gold is not None:
    m1, m2, m3, m4 = st.columns(4)
    if a.score is not None:
        m1.metric("AER", f"{a.score.aer:.1%}", help="Alignment error rate (Och & Ney 2003): lower is better.")
        m2.metric("Precision", f"{a.score.precision:.1%}", help="Links that the gold marks sure or possible.")
        m3.metric("Recall", f"{a.score.recall:.1%}", help="Sure gold links found.")
    m4.metric(
        "Links / gold sure",
        f"{len(a.links)} / {len(gold.sure)}",
        help=f"Gold links, sure or possible: {len(gold.possible)}.",
    )
    diagonal = diagonal_links(len(a.src_words), len(a.tgt_words))
    if diagonal or gold.sure:
        d = score_alignments([diagonal], [gold])
        st.caption(
            f"This sentence's AER with these settings. The no-model diagonal (each French word linked to the English "
            f"word at the same relative position) gets {d.aer:.1%}; an explanation tells something about word "
            "correspondence only where it does better."
        )

chart(
    alignment_lines(a.src_words, a.tgt_words, a.links, gold.sure if gold else None, gold.possible if gold else None),
    "align.lines",
)
scores = a.scores if eos == "no link" else a.scores[:-1, :-1]
chart(
    alignment_heatmap(
        scores,
        a.src_words,
        a.tgt_words,
        a.links,
        gold.sure if gold else None,
        gold.possible if gold else None,
        signed=signed,
        specials="(end)" if eos == "no link" else None,
    ),
    "align.heatmap",
)
st.caption(
    "Word scores: a word's token scores summed over source pieces and averaged over output pieces. Dots: the links "
    "drawn above" + ("; squares: gold sure links, diamonds: gold possible ones." if gold else ".")
)

st.subheader("Export")
st.code(a.pharaoh or "(no links)", language=None)
st.download_button(
    "Links as Pharaoh text",
    a.pharaoh + "\n",
    f"lantern-{spec.name}-{method}-{extraction}.align",
    "text/plain",
    key="align.pharaoh",
    help="One line, “i-j” per link: source word i, output word j, 0-based (as fast_align writes them).",
)
