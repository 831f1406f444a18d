"""Small attention weights are printed readably on the explain page, its script and the PNG: never "0.0000"."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from pykeen_mkgformer.explain.colors import weight_text
from pykeen_mkgformer.explain.explanation import Explanation, FusedLayer, ImageSlot, QueryToken
from pykeen_mkgformer.explain.html import render_html

VALUES = [0.0, 1.0, 0.5, 0.25, 0.001, 0.00123456, 0.000999, 1.2345e-4, 1.25e-4, 3e-7, 9.96e-5, 2.5e-12]


def test_weight_text_by_hand():
    assert weight_text(0.0) == "0"
    assert weight_text(1.0) == "1.0000"
    assert weight_text(0.25) == "0.2500"
    assert weight_text(0.001) == "0.0010"
    assert weight_text(1.2345e-4) == "1.2e-4"
    assert weight_text(3e-7) == "3.0e-7"
    assert weight_text(9.96e-5) == "1.0e-4"  # rounding carries into the exponent
    assert weight_text(np.float32(5e-5)) == "5.0e-5"
    assert all(weight_text(v) != "0.0000" for v in VALUES)


def explanation_where_the_class_token_takes_nearly_everything() -> Explanation:
    """One token, one 32-px image of 2 x 2 patches after its class token; the class token gets 1 - 4e-5."""
    slot = ImageSlot(index=0, group=0, position=0, side=32, grid=2, token_start=0, has_class_token=True, present=True,
                     pixels=np.zeros((32, 32, 3), dtype=np.uint8))
    patches = np.array([1.2e-5, 0.8e-5, 1.0e-5, 1.0e-5])
    caf = np.concatenate([[1.0 - patches.sum()], patches])[None, :]
    return Explanation(
        task="link prediction", query="(a, r, ?)",
        tokens=[QueryToken(index=0, text="[CLS]", kind="special", token_id=101)],
        images=[slot], layers=[FusedLayer(text_layer=0, vision_layer=0, caf=caf)], answers=[],
    )


def test_the_legend_of_a_class_token_dominated_row():
    page = render_html(explanation_where_the_class_token_takes_nearly_everything())
    assert re.search(r'<span class="peak">1\.2e-5</span>', page)
    assert re.search(r'<span class="mass">4\.0e-5</span>', page)
    assert re.search(r'<span class="cls">1\.0000</span>', page)
    assert "0.0000" not in page


def test_the_page_script_prints_like_python(tmp_path):
    """The script re-renders the legend when a token is chosen: its ``fmt`` agrees with :func:`weight_text`."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("Node.js is not installed (Debian: apt-get install nodejs)")
    page = render_html(explanation_where_the_class_token_takes_nearly_everything())
    [function] = re.findall(r"function fmt\(x\) \{.*?\}\n", page, flags=re.S)
    script = tmp_path / "fmt.js"
    script.write_text(function + f"console.log(JSON.stringify({json.dumps(VALUES)}.map(fmt)));\n")
    printed = json.loads(subprocess.run([node, str(script)], capture_output=True, text=True, check=True, timeout=60).stdout)
    assert printed == [weight_text(v) for v in VALUES]
