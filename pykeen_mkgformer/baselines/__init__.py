"""The multimodal baselines as PyKEEN models over frozen entity features, and the features themselves.

- :mod:`.features`: one visual and one textual vector per entity from pretrained towers (cached)
- :mod:`.representation`: PyKEEN representations over such features (missing marker, projection)
- :mod:`.models`: IKRL, TBKGC, TransAE, RSME, VBTransE, VBRotatE, QEB, MoSE, AdaMF
- :mod:`.adversarial`: AdaMF-MAT's modality-adversarial training as a PyKEEN training loop
"""
