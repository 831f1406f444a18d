r"""Modality-adversarial training (the "MAT" of AdaMF-MAT, Zhang et al., COLING 2024) as a PyKEEN training loop.

A generator makes fake modality views of an entity from its structure view and noise,

.. math ::
    \tilde{\mathbf{e}}_m = g_m([\mathbf{e}_s; \mathbf{z}]), \qquad \mathbf{z} \sim \mathcal{N}(0, I),
    \qquad g_m(\mathbf{x}) = W_{m,2}\,\mathrm{LeakyReLU}(W_{m,1}\mathbf{x}),

and each positive :math:`(h, r, t)` gets one adversarial negative :math:`(h, r, \tilde{t})`: the same tail
with its image / text views replaced by generated ones. The model (the discriminator) is trained with
the loop's loss on real versus adversarial triples, weighted by :math:`\mu` and added to the usual
sLCWA loss; the generator is trained to raise the adversarial triples' scores (:math:`-f(h, r, \tilde{t})`),
with its own Adam optimiser and with the model's weights held fixed for that step. The generator
belongs to the loop, not the model: a trained model saves, loads and predicts exactly as without it.

Works with any model whose entity representations are a structure view followed by modality views
of the same width (:class:`~.models.AdaMF`).
"""

from __future__ import annotations

from typing import Any

import torch
from pykeen.training import SLCWATrainingLoop
from torch import nn

__all__ = ["ModalityGenerator", "ModalityAdversarialTrainingLoop"]


class ModalityGenerator(nn.Module):
    """One two-layer generator per modality view: ``[structure; noise] -> fake view``."""

    def __init__(self, *, dim: int, num_views: int, noise_dim: int | None = None, hidden_dim: int | None = None) -> None:
        """
        :param dim: width of the structure view and of each generated view
        :param num_views: how many modality views to generate
        :param noise_dim: width of the Gaussian noise (default: ``dim``)
        :param hidden_dim: hidden width (default: ``dim``)
        """
        super().__init__()
        self.noise_dim = noise_dim or dim
        hidden_dim = hidden_dim or dim
        self.generators = nn.ModuleList(
            nn.Sequential(nn.Linear(dim + self.noise_dim, hidden_dim), nn.LeakyReLU(0.2), nn.Linear(hidden_dim, dim))
            for _ in range(num_views)
        )

    def forward(self, structure: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Fake views for the entities whose structure views are ``structure`` (shape ``(*batch, dim)``)."""
        noise = torch.randn(*structure.shape[:-1], self.noise_dim, device=structure.device, dtype=structure.dtype)
        x = torch.cat([structure, noise], dim=-1)
        return tuple(generator(x) for generator in self.generators)


class ModalityAdversarialTrainingLoop(SLCWATrainingLoop):
    """sLCWA training plus modality-adversarial negatives from a jointly trained :class:`ModalityGenerator`."""

    def __init__(
        self,
        *,
        adversarial_weight: float = 1.0,
        generator_lr: float = 1e-4,
        noise_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        """
        :param adversarial_weight: :math:`\\mu`, the weight of the real-vs-adversarial loss term
        :param generator_lr: the generator's Adam learning rate
        :param noise_dim: width of the generator's noise (default: the views' width)
        :param kwargs: passed to :class:`pykeen.training.SLCWATrainingLoop`
        """
        super().__init__(**kwargs)
        views = self.model.entity_representations
        if len(views) < 2:
            raise ValueError(
                f"{type(self.model).__name__} has {len(views)} entity representation(s); modality-adversarial "
                "training needs a structure view followed by modality views (e.g. AdaMF)"
            )
        shapes = {tuple(view.shape) for view in views}
        if len(shapes) != 1:
            raise ValueError(f"{type(self.model).__name__}: the entity views differ in shape ({sorted(shapes)}); they must match")
        (shape,) = shapes
        self.adversarial_weight = adversarial_weight
        self.generator = ModalityGenerator(dim=shape[-1], num_views=len(views) - 1, noise_dim=noise_dim).to(self.model.device)
        self.generator_optimizer = torch.optim.Adam(self.generator.parameters(), lr=generator_lr)

    def adversarial_scores(self, positives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Scores of the real triples, of their adversarial twins (generator output detached) and the generator's loss."""
        h, r, t = self.model._get_representations(h=positives[:, 0], r=positives[:, 1], t=positives[:, 2], mode=self.mode)
        structure = t[0]
        interaction = self.model.interaction
        real = interaction.score_hrt(h=h, r=r, t=t)
        fake_views = self.generator(structure.detach())
        fake = interaction.score_hrt(h=h, r=r, t=(structure, *(view.detach() for view in fake_views)))
        # the generator's objective: make the model score its tails high; the model's weights are constants here
        frozen = lambda x: tuple(v.detach() for v in x) if isinstance(x, (tuple, list)) else x.detach()  # noqa: E731
        generator_loss = -interaction.score_hrt(h=frozen(h), r=frozen(r), t=(structure.detach(), *fake_views)).mean()
        return real, fake, generator_loss

    def _process_batch(  # noqa: D102
        self,
        batch: Any,
        start: int,
        stop: int,
        label_smoothing: float = 0.0,
        slice_size: int | None = None,
    ) -> torch.Tensor:
        loss = super()._process_batch(batch, start, stop, label_smoothing=label_smoothing, slice_size=slice_size)
        positives = batch["positives"][start:stop].to(device=self.model.device)
        real, fake, generator_loss = self.adversarial_scores(positives)
        # generator step (gradients for the generator only; the model's own step follows in the training loop)
        parameters = list(self.generator.parameters())
        gradients = torch.autograd.grad(generator_loss, parameters)
        for parameter, gradient in zip(parameters, gradients, strict=True):
            parameter.grad = gradient
        self.generator_optimizer.step()
        self.generator_optimizer.zero_grad(set_to_none=True)
        adversarial = self.loss.process_slcwa_scores(
            positive_scores=real,
            negative_scores=fake,
            label_smoothing=label_smoothing,
            num_entities=self.model._get_entity_len(mode=self.mode),
        )
        return loss + self.adversarial_weight * adversarial
