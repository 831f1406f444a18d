"""The case analysis as one self-contained HTML page.

Everything is inside the file: images as ``data:`` URIs, the CSS, the attention weights (a JSON
block) and a small script that recolours the heatmaps when another token is selected. The page loads
nothing from anywhere and works offline; without JavaScript it shows the first token's heatmaps.
"""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from .colors import COLORMAP, MAX_OPACITY, color, png_data_uri, weight_text
from .explanation import Explanation, FusedLayer, ImageSlot

__all__ = ["render_html", "write_html"]

#: display width of the largest image of the layout (smaller resolutions are shown proportionally)
DISPLAY = 224
MIN_DISPLAY = 96
THUMBNAIL = 64

CSS = """
:root { --fg: #1d1d1f; --muted: #6b6b70; --line: #d8d8dc; --accent: #c2410c; --bg: #fafafa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; max-width: 1180px; padding: 24px; }
h1 { font-size: 1.5em; margin: 0 0 4px; } h2 { font-size: 1.15em; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1em; margin: 16px 0 6px; }
.query { font: 600 1.2em ui-monospace, SFMono-Regular, Menlo, monospace; margin: 4px 0 12px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; font-size: .9em; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.notes { background: #fff7ed; border: 1px solid #fdba74; border-radius: 6px; padding: 8px 12px; }
.notes p { margin: 4px 0; }
.tokens { display: flex; flex-wrap: wrap; gap: 4px; margin: 8px 0; }
.tok { font: 13px ui-monospace, Menlo, monospace; border: 1px solid var(--line); border-radius: 4px;
       background: #fff; padding: 2px 6px; cursor: pointer; color: var(--fg); }
.tok.kind-mask { border-color: #7c3aed; background: #f5f3ff; } .tok.kind-entity { border-color: #0369a1; background: #f0f9ff; }
.tok.kind-relation { border-color: #15803d; background: #f0fdf4; } .tok.kind-special { color: var(--muted); }
.tok[aria-pressed="true"] { outline: 3px solid var(--accent); outline-offset: 1px; }
.selected-token { font-weight: 600; font-family: ui-monospace, Menlo, monospace; }
.gallery, .heatmaps { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-end; }
figure { margin: 0; } figcaption { font-size: .8em; color: var(--muted); max-width: 240px; overflow-wrap: anywhere; }
img.pixelated, .heat { image-rendering: pixelated; }
.gallery img, .heat, td img { border: 1px solid var(--line); background: #fff; }
.empty-slot { display: flex; align-items: center; justify-content: center; border: 1px dashed var(--line);
              color: var(--muted); font-size: .8em; background: #fff; }
.heat { position: relative; background-size: 100% 100%; }
.grid { position: absolute; inset: 0; display: grid; }
.cell { outline: 1px solid rgba(255, 255, 255, .12); }
.layer { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 4px 14px 14px; margin: 12px 0; }
.legend { display: flex; align-items: center; gap: 8px; font-size: .8em; color: var(--muted); margin: 8px 0; }
.legend .ramp { width: 160px; height: 10px; border-radius: 2px; }
.pgi { display: grid; grid-template-columns: max-content 1fr max-content; gap: 2px 8px; align-items: center; font-size: .82em; max-width: 640px; }
.pgi .label { font-family: ui-monospace, Menlo, monospace; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 260px; }
.pgi .track { background: #eee; height: 10px; border-radius: 2px; }
.pgi .bar { background: #0f766e; height: 10px; border-radius: 2px; }
.pgi .selected { font-weight: 700; color: var(--accent); }
table { border-collapse: collapse; width: 100%; font-size: .9em; background: #fff; }
th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: left; vertical-align: top; }
th { color: var(--muted); font-weight: 600; } td.num { font-variant-numeric: tabular-nums; text-align: right; }
tr.target { background: #ecfdf5; } tr.gap td { color: var(--muted); text-align: center; }
.badge { display: inline-block; font-size: .75em; border-radius: 3px; padding: 0 5px; margin: 0 3px 0 0; background: #e5e7eb; }
.badge.target { background: #059669; color: #fff; } .prob { background: #0f766e; height: 8px; border-radius: 2px; }
.muted { color: var(--muted); }
"""

SCRIPT = """
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("explanation-data").textContent);
  const colormap = data.colormap, maxOpacity = data.max_opacity;
  function colour(v) {
    v = Math.min(Math.max(v, 0), 1) * (colormap.length - 1);
    const low = Math.min(Math.floor(v), colormap.length - 2), f = v - low;
    return colormap[low].map((a, i) => Math.round(a + (colormap[low + 1][i] - a) * f));
  }
  function fmt(x) { if (x === 0) { return "0"; } return Math.abs(x) < 1e-3 ? x.toExponential(1) : x.toFixed(4); }
  function select(token) {
    document.querySelectorAll(".tok").forEach(b => b.setAttribute("aria-pressed", String(Number(b.dataset.token) === token)));
    const chooser = document.getElementById("token-select");
    if (chooser) { chooser.value = String(token); }
    document.querySelectorAll(".selected-token").forEach(e => { e.textContent = data.tokens[token]; });
    data.layers.forEach((layer, l) => {
      const article = document.querySelector('.layer[data-layer="' + l + '"]');
      if (!article) { return; }
      article.querySelectorAll(".pgi [data-token]").forEach(e => e.classList.toggle("selected", Number(e.dataset.token) === token));
      if (!layer.caf) { return; }
      const row = layer.caf[token];
      let top = 0;
      data.images.forEach(img => { if (img.present) { for (let c = 0; c < img.grid * img.grid; c++) { top = Math.max(top, row[img.patch_start + c]); } } });
      article.querySelectorAll(".heatmap").forEach(figure => {
        const img = data.images[Number(figure.dataset.image)];
        let mass = 0;
        figure.querySelectorAll(".cell").forEach(cell => {
          const c = Number(cell.dataset.cell), w = row[img.patch_start + c], v = top > 0 ? w / top : 0;
          const [r, g, b] = colour(v);
          cell.style.backgroundColor = "rgba(" + r + "," + g + "," + b + "," + (maxOpacity * v).toFixed(3) + ")";
          cell.title = "patch (" + Math.floor(c / img.grid) + ", " + (c % img.grid) + "): " + fmt(w);
          mass += w;
        });
        const cls = img.has_class_token ? row[img.token_start] : null;
        figure.querySelector(".mass").textContent = fmt(mass);
        const clsNode = figure.querySelector(".cls");
        if (clsNode) { clsNode.textContent = fmt(cls); }
      });
      const peak = article.querySelector(".peak");
      if (peak) { peak.textContent = fmt(top); }
    });
  }
  document.querySelectorAll(".tok").forEach(b => b.addEventListener("click", () => select(Number(b.dataset.token))));
  const chooser = document.getElementById("token-select");
  if (chooser) { chooser.addEventListener("change", () => select(Number(chooser.value))); }
  select(data.order[0]);
})();
"""


#: characters that must not appear raw inside a <script> block: an HTML parser reads "</script", "<!--"
#: and "<script" there, and U+2028/2029 end a line in older JavaScript engines
_SURROGATE = re.compile("[\ud800-\udfff]")
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _finite(value: Any) -> Any:
    """JSON values with NaN / infinity as null (JSON.parse refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def script_json(value: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: ``<``, ``>``, ``&``, U+2028 and U+2029
    as ``\\uXXXX`` escapes (the same string for ``JSON.parse``, nothing an HTML parser acts on),
    non-finite numbers as null, every other non-ASCII character (lone surrogates included) escaped too."""
    text = json.dumps(_finite(value), separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return "".join(_SCRIPT_ESCAPES.get(character, character) for character in text)


def _e(value: Any) -> str:
    # lone surrogates (undecodable file names) cannot be written as UTF-8: shown as U+FFFD
    text = str(value).encode("utf-8", "replace").decode("utf-8") if _SURROGATE.search(str(value)) else str(value)
    return html.escape(text, quote=True)


def _display_size(slot: ImageSlot, largest: int) -> int:
    return max(MIN_DISPLAY, round(DISPLAY * slot.side / largest))


def _round(array: np.ndarray) -> list:
    return np.round(array.astype(np.float64), 6).tolist()


def _payload(explanation: Explanation) -> dict[str, Any]:
    return {
        "tokens": [token.text for token in explanation.tokens],
        "order": explanation.token_order(),
        "images": [
            dict(index=s.index, grid=s.grid, token_start=s.token_start, patch_start=s.patch_start,
                 has_class_token=s.has_class_token, present=s.present)
            for s in explanation.images
        ],
        "layers": [
            dict(text_layer=layer.text_layer, vision_layer=layer.vision_layer,
                 caf=_round(layer.caf) if layer.caf is not None else None,
                 pgi=_round(layer.pgi) if layer.pgi is not None else None)
            for layer in explanation.layers
        ],
        "colormap": [list(c) for c in COLORMAP],
        "max_opacity": MAX_OPACITY,
    }


def _heatmap(layer: FusedLayer, slot: ImageSlot, token: int, top: float, largest: int) -> str:
    size = _display_size(slot, largest)
    weights = layer.heatmap(token, slot)
    cells = []
    for c, w in enumerate(weights.reshape(-1)):
        v = float(w) / top if top > 0 else 0.0
        r, g, b = color(v)
        cells.append(
            f'<div class="cell" data-cell="{c}" title="patch ({c // slot.grid}, {c % slot.grid}): {weight_text(w)}" '
            f'style="background-color: rgba({r},{g},{b},{MAX_OPACITY * v:.3f})"></div>'
        )
    mass = float(weights.sum())
    cls = (
        f' · class token <span class="cls">{weight_text(layer.class_weight(token, slot))}</span>' if slot.has_class_token else ""
    )
    return (
        f'<figure class="heatmap" data-image="{slot.index}">'
        f'<div class="heat img-{slot.index}" role="img" aria-label="CAF weights over image {slot.index + 1}" '
        f'style="width:{size}px;height:{size}px">'
        f'<div class="grid" style="grid-template-columns:repeat({slot.grid},1fr);grid-template-rows:repeat({slot.grid},1fr)">'
        + "".join(cells)
        + f"</div></div><figcaption>image {slot.index + 1} ({slot.side} px, {slot.grid}×{slot.grid} patches): "
        f'patches <span class="mass">{weight_text(mass)}</span>{cls}</figcaption></figure>'
    )


def _layer_section(explanation: Explanation, k: int, layer: FusedLayer, token: int, largest: int) -> str:
    parts = [
        f'<article class="layer" data-layer="{k}"><h3>Fused layer {k + 1} '
        f'<span class="muted">(text layer {layer.text_layer + 1}, vision layer {layer.vision_layer + 1})</span></h3>'
    ]
    present = [slot for slot in explanation.images if slot.present]
    if layer.caf is not None and present:
        top = max(float(layer.heatmap(token, slot).max()) for slot in present)
        parts.append(
            '<p>CAF: how token <span class="selected-token"></span> aggregates the patches '
            "(S = softmax(H<sub>t</sub> H<sub>v</sub><sup>T</sup>), a row over all images sums to 1).</p>"
        )
        parts.append('<div class="heatmaps">' + "".join(_heatmap(layer, s, token, top, largest) for s in present) + "</div>")
        ramp = ", ".join(f"rgb{color(i / 10)}" for i in range(11))
        parts.append(
            f'<div class="legend">0<span class="ramp" style="background: linear-gradient(to right, {ramp})"></span>'
            f'<span class="peak">{weight_text(top)}</span> (colour relative to this token\'s largest patch weight in this layer)</div>'
        )
    else:
        parts.append('<p class="muted">No CAF weights in this layer (no images, or CAF switched off).</p>')
    if layer.pgi is not None:
        peak = float(layer.pgi.max()) if layer.pgi.size else 0.0
        parts.append(
            f"<h3>PGI: attention of the visual tokens over the text prefix</h3><p class=\"muted\">Mean over heads and the "
            f"real visual tokens; the text prefix receives {float(layer.pgi.sum()):.1%} of the visual tokens' attention.</p>"
            '<div class="pgi">'
        )
        for tok in explanation.tokens:
            value = float(layer.pgi[tok.index])
            width = 100 * value / peak if peak > 0 else 0
            parts.append(
                f'<span class="label" data-token="{tok.index}" title="{_e(tok.text)}">{_e(tok.text)}</span>'
                f'<div class="track"><div class="bar" style="width:{width:.1f}%"></div></div>'
                f'<span class="num">{weight_text(value)}</span>'
            )
        parts.append("</div>")
    elif explanation.has_images:
        parts.append('<p class="muted">No PGI attention in this layer (PGI switched off).</p>')
    parts.append("</article>")
    return "".join(parts)


def _answers_section(explanation: Explanation) -> str:
    rows = []
    is_relation = explanation.task == "relation extraction"
    previous = 0
    for answer in explanation.answers:
        badges = "".join(f'<span class="badge">known: {_e(split)}</span>' for split in answer.known_in)
        if answer.is_target:
            badges = '<span class="badge target">true answer</span>' + badges
        image = (
            f'<img class="pixelated" src="{png_data_uri(answer.image)}" width="{THUMBNAIL}" height="{THUMBNAIL}" '
            f'alt="first image of {_e(answer.label)}">'
            if answer.image is not None
            else '<span class="muted">no image</span>'
        )
        name = f"<br><span class=\"muted\">{_e(answer.name)}</span>" if answer.name and answer.name != answer.label else ""
        if answer.position > previous + 1:
            rows.append('<tr class="gap"><td colspan="5">…</td></tr>')
        previous = answer.position
        if is_relation:
            probability = answer.probability or 0.0
            rows.append(
                f'<tr class="{"target" if answer.is_target else ""}"><td class="num">{answer.position}</td>'
                f"<td>{_e(answer.label)} {badges}</td><td class=\"num\">{answer.score:.4f}</td>"
                f'<td class="num">{probability:.4f}</td><td><div class="prob" style="width:{100 * probability:.1f}%"></div></td></tr>'
            )
        else:
            rows.append(
                f'<tr class="{"target" if answer.is_target else ""}"><td class="num">{answer.position}</td>'
                f"<td>{_e(answer.label)}{name}<br>{badges}</td><td class=\"num\">{answer.score:.4f}</td>"
                f"<td>{_e(answer.description or '')}</td><td>{image}</td></tr>"
            )
    if is_relation:
        head = "<tr><th>#</th><th>relation</th><th>logit</th><th>probability</th><th style=\"width:30%\"></th></tr>"
        title = "Predicted relation distribution"
    else:
        head = "<tr><th>#</th><th>entity</th><th>score</th><th>description</th><th>first image</th></tr>"
        listed = [a.position for a in explanation.answers]
        title = f"Top {next((i for i, p in enumerate(listed) if p != i + 1), len(listed))} answers"
    summary = ""
    if explanation.target is not None:
        if explanation.target_rank is not None:
            summary = (
                f"<p>True answer <b>{_e(explanation.target)}</b>: filtered realistic rank "
                f"<b>{explanation.target_rank:g}</b> (as PyKEEN's RankBasedEvaluator: the other known answers of "
                f"every split removed), score {explanation.target_score:.4f}.</p>"
            )
        else:
            summary = f"<p>Gold label <b>{_e(explanation.target)}</b>.</p>"
    return f'<section id="answers"><h2>{title}</h2>{summary}<table><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table></section>'


def render_html(explanation: Explanation) -> str:
    """The page as a string."""
    order = explanation.token_order()
    first = order[0] if order else 0
    largest = max((slot.side for slot in explanation.images), default=DISPLAY)
    backgrounds = "".join(
        f".img-{slot.index} {{ background-image: url({png_data_uri(slot.pixels)}); }}\n"
        for slot in explanation.images
        if slot.present and slot.pixels is not None
    )
    facts = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in explanation.facts.items())
    notes = (
        '<section class="notes" id="notes">' + "".join(f"<p>{_e(note)}</p>" for note in explanation.notes) + "</section>"
        if explanation.notes
        else ""
    )
    chips = "".join(
        f'<button type="button" class="tok kind-{token.kind}" data-token="{token.index}" aria-pressed="false" '
        f'title="{_e(token.kind)} token {token.index}">{_e(token.text)}</button>'
        for token in explanation.tokens
    )
    options = "".join(
        f'<option value="{index}">{_e(explanation.tokens[index].text)} ({explanation.tokens[index].kind})</option>'
        for index in order
    )
    gallery = []
    for slot in explanation.images:
        size = _display_size(slot, largest)
        label = f"image {slot.index + 1}: {slot.side} px (group {slot.group + 1}, slot {slot.position + 1})"
        if slot.present and slot.pixels is not None:
            source = f"<br>{_e(Path(slot.source).name)}" if slot.source else ""
            gallery.append(
                f'<figure><img class="pixelated" src="{png_data_uri(slot.pixels)}" width="{size}" height="{size}" '
                f'alt="{_e(label)}"><figcaption>{_e(label)}{source}</figcaption></figure>'
            )
        else:
            gallery.append(
                f'<figure><div class="empty-slot" style="width:{size}px;height:{size}px">no image</div>'
                f"<figcaption>{_e(label)}: empty slot (masked)</figcaption></figure>"
            )
    images_section = (
        '<section id="images"><h2>Images of the query</h2><div class="gallery">' + "".join(gallery) + "</div></section>"
        if explanation.images
        else '<section id="images"><h2>Images of the query</h2><p>No images: the model read this query as text only.</p></section>'
    )
    layers = "".join(
        _layer_section(explanation, k, layer, first, largest) for k, layer in enumerate(explanation.layers)
    )
    data = script_json(_payload(explanation))
    title = f"MKGformer case analysis: {explanation.query}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title><link rel="icon" href="data:,">
<style>{CSS}{backgrounds}</style></head>
<body>
<header><h1>MKGformer case analysis · {_e(explanation.task)}</h1><p class="query">{_e(explanation.query)}</p>
<dl class="facts">{facts}</dl></header>
{notes}
{_answers_section(explanation)}
<section id="tokens"><h2>The input as the model reads it</h2>
<p class="muted">Click a token (or choose it below) to see which image patches it draws on in every fused layer.</p>
<div class="tokens">{chips}</div>
<label>Selected token <select id="token-select">{options}</select></label></section>
{images_section}
<section id="layers"><h2>Fused layers ({len(explanation.layers)}): CAF token-to-patch weights and PGI</h2>{layers}</section>
<script type="application/json" id="explanation-data">{data}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def write_html(explanation: Explanation, path: str | Path) -> Path:
    """Write the page (atomically: a temporary name, then a rename); returns its path."""
    from ..data.atomic import write_text

    return write_text(path, render_html(explanation))
