"""One image per instance (plus optional object crops), decoded once, processed once.

An instance names its image (``img_id``); the image is looked up in a folder and decoded with
:func:`pykeen_mkgformer.data.decoding.load_rgb`, the decoder link prediction uses too (every mode
to RGB, transparency on white, 16-bit scaled, EXIF orientation, bombs refused, only regular
files opened). A missing or unusable file never stops a run: the instance runs text-only
(``image_mask`` False), the file is warned about once by name, and counted in
:attr:`InstanceImages.missing` / :attr:`InstanceImages.skipped` (written to ``metrics.json``).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path, PurePath
from typing import Sequence

import torch
from tqdm.auto import tqdm
from transformers import BaseImageProcessor

from ..data.decoding import load_rgb
from ..data.errors import DataError, ImageError
from ..data.files import file_problem, read_bounded
from ..data.images import OFFICIAL_CROP_GROUPS

__all__ = ["InstanceImages", "OfficialCropImages", "ImageBatch"]

#: suffixes tried for object crops ``<image stem>_<n><suffix>``
CROP_SUFFIXES = (".jpg", ".jpeg", ".png")

#: ``(pixel_values, image_mask)`` as :class:`~pykeen_mkgformer.encoder.HybridTransformer` takes them
ImageBatch = tuple[list[torch.Tensor], list[torch.Tensor]]


class InstanceImages:
    """Pixels of each instance's main image and of up to ``max_crops`` object crops.

    Every distinct file is decoded and processed once (with the vision tower's transformers image
    processor) and kept in memory; the datasets' available images are few and small.

    Crops of ``photo.jpg`` are the files ``photo_0.jpg``, ``photo_1.jpg``, ... (or ``.png``) in
    ``crops_folder``, as the visual-grounding crops of MNRE are named.
    """

    def __init__(
        self,
        folder: Path | None,
        processor: BaseImageProcessor,
        *,
        crops_folder: Path | None = None,
        max_crops: int = 3,
        missing: str = "masked",
    ):
        """:param missing: ``"masked"``: a batch's absent images are left out of attention; ``"zeros"``:
        they are zero images, attended (the official code's way)"""
        if missing not in ("masked", "zeros"):
            raise ValueError(f"missing must be 'masked' or 'zeros', got {missing!r}.")
        self.missing_images = missing
        self.folder = folder
        self.crops_folder = crops_folder
        self.max_crops = max_crops if crops_folder is not None else 0
        self.processor = processor
        #: file names that were asked for and do not exist
        self.missing: set[str] = set()
        #: ``(path, reason)`` of files that exist (or names that are refused) but cannot be used
        self.skipped: list[tuple[str, str]] = []
        self._pixels: dict[Path, torch.Tensor | None] = {}
        self._refused: set[str] = set()
        for kind, path in (("image", folder), ("crops", crops_folder)):
            if path is not None and os.path.lexists(path) and not os.path.isdir(path):
                problem = file_problem(path) or "not a directory"
                warnings.warn(f"{kind} folder {path} cannot be used ({problem}): its images count as missing", stacklevel=2)

    @property
    def unreadable(self) -> list[tuple[str, str]]:
        """The skipped files (the earlier name of :attr:`skipped`)."""
        return self.skipped

    # ------------------------------------------------------------------ loading
    #: skipped images warned about one by one; the rest are counted in one warning after :meth:`prepare`
    WARN_EACH = 5

    def _skip(self, path: str, reason: str) -> None:
        if len(self.skipped) < self.WARN_EACH:
            warnings.warn(f"image skipped: {path}: {reason}; the instance runs text-only", stacklevel=3)
        self.skipped.append((path, reason))

    def _warn_rest(self, before: int) -> None:
        """One warning for the skips of this :meth:`prepare` call beyond the first :attr:`WARN_EACH`."""
        from ..data.labels import summarize

        rest = self.skipped[max(before, self.WARN_EACH):]
        if rest:
            warnings.warn(
                summarize([f"{path}: {reason}" for path, reason in rest], "more images skipped (listed in metrics.json)"),
                stacklevel=3,
            )

    def _load(self, path: Path) -> torch.Tensor | None:
        if path not in self._pixels:
            try:
                image = load_rgb(path)
            except ImageError as error:
                self._skip(str(path), error.reason)
                pixels = None
            else:
                pixels = self.processor(images=image, return_tensors="pt")["pixel_values"][0]
            self._pixels[path] = pixels
        return self._pixels[path]

    def _path(self, folder: Path, name: str) -> Path | None:
        """``folder / name``, or None (and a skip) when the name would leave the folder."""
        pure = PurePath(name)
        if "\x00" in name or pure.is_absolute() or ".." in pure.parts or pure.drive:
            if name not in self._refused:  # report each name once
                self._refused.add(name)
                self._skip(name, f"image name {name!r} is not a file name inside {folder}")
            return None
        path = folder / name
        # a symlink that leads outside the folder is refused like a ../ name
        if os.path.islink(path) or any(os.path.islink(parent) for parent in list(path.parents)[: len(pure.parts) - 1]):
            real, root = os.path.realpath(path), os.path.realpath(folder)
            if not (real == root or real.startswith(root.rstrip(os.sep) + os.sep)):
                if name not in self._refused:
                    self._refused.add(name)
                    self._skip(str(path), f"a symlink leading outside {folder}")
                return None
        return path

    def main_image(self, name: str | None) -> torch.Tensor | None:
        """The processed main image ``(3, H, W)``, or None when it is missing or unusable."""
        if not name or self.folder is None:
            return None
        path = self._path(self.folder, name)
        if path is None:
            return None
        if not os.path.lexists(path):
            self.missing.add(name)
            return None
        return self._load(path)

    def crops(self, name: str | None) -> list[torch.Tensor]:
        """The processed object crops of an image (at most ``max_crops``), possibly none."""
        if not name or self.crops_folder is None:
            return []
        stem = PurePath(name).stem
        found = []
        for index in range(self.max_crops):
            for suffix in CROP_SUFFIXES:
                path = self._path(self.crops_folder, f"{stem}_{index}{suffix}")
                if path is not None and os.path.lexists(path):
                    pixels = self._load(path)
                    if pixels is not None:
                        found.append(pixels)
                    break
        return found

    def listed_crops(self, files: Sequence[str]) -> list[torch.Tensor]:
        """The processed crops named by ``files`` (paths inside ``crops_folder``, from a crop index), at most
        ``max_crops``; a listed file that is missing counts in :attr:`missing` and is left out."""
        found = []
        for name in list(files)[: self.max_crops]:
            path = self._path(self.crops_folder, str(name)) if self.crops_folder is not None else None
            if path is None:
                continue
            if not os.path.lexists(path):
                self.missing.add(str(name))
                continue
            pixels = self._load(path)
            if pixels is not None:
                found.append(pixels)
        return found

    def prepare(self, names: Sequence[str | None], *, progress: bool = True) -> list[tuple[torch.Tensor | None, list[torch.Tensor]]]:
        """Main image and crops of every instance, in order (decoding each file once)."""
        before = len(self.skipped)
        prepared = [
            (self.main_image(name), self.crops(name))
            for name in tqdm(names, desc="images", unit="instance", disable=not progress, leave=False)
        ]
        self._warn_rest(before)
        return prepared

    # ------------------------------------------------------------------ batching
    def batch(self, items: Sequence[tuple[torch.Tensor | None, list[torch.Tensor]]]) -> ImageBatch | None:
        """Stack a batch's images: one group for main images, one for crops (when configured).

        Returns None when no instance of the batch has any image (the encoder then runs text-only).
        """
        shape = next((main.shape for main, _ in items if main is not None), None)
        if shape is None:
            shape = next((crops[0].shape for _, crops in items if crops), None)
        if shape is None:
            return None
        batch_size = len(items)
        main_pixels = torch.zeros(batch_size, 1, *shape)
        zeros_attended = self.missing_images == "zeros"
        main_mask = torch.full((batch_size, 1), zeros_attended, dtype=torch.bool)
        crop_pixels = torch.zeros(batch_size, self.max_crops, *shape)
        crop_mask = torch.full((batch_size, self.max_crops), zeros_attended, dtype=torch.bool)
        for row, (main, crops) in enumerate(items):
            if main is not None:
                main_pixels[row, 0] = main
                main_mask[row, 0] = True
            for column, crop in enumerate(crops):
                crop_pixels[row, column] = crop
                crop_mask[row, column] = True
        if self.max_crops == 0:
            return [main_pixels], [main_mask]
        return [main_pixels, crop_pixels], [main_mask, crop_mask]

    def summary(self, items: Sequence[tuple[torch.Tensor | None, list[torch.Tensor]]]) -> dict:
        """JSON-ready counts for one split: instances with / without a main image, crops."""
        with_image = sum(main is not None for main, _ in items)
        return {
            "instances": len(items),
            "with_image": with_image,
            "text_only": len(items) - with_image,
            "crops": sum(len(crops) for _, crops in items),
        }

    def file_summary(self) -> dict:
        """JSON-ready: how many distinct image files were missing, and which were skipped and why."""
        return {
            "missing": len(self.missing),
            "unreadable": [path for path, _ in self.skipped],
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
        }


class OfficialCropImages:
    """The official RE / NER vision input: object crops at two sizes, the main image unused.

    The official MRE / MNER encoders read, per instance, up to 3 object crops at 4 patches a side
    (128 px for a 32 px-patch tower) and up to 3 crops at 2 patches a side (64 px); each group gets
    learned positions of its own and one bare class token comes first (the encoder's
    ``vision_embedding="class_and_groups"`` with ``group_positions=(48, 12)``).

    Where the crops come from (``crop_source``):

    - ``"stem"``: ``<image stem>_<n>`` files in ``crops_folder`` (large) and ``small_crops_folder`` (small);
    - ``"index"`` (official): the large crops are listed per instance in ``crops_folder/index.json``,
      ``{"train" | "dev" | "test": {"<instance key>": ["<file in crops_folder>", ...]}}`` (MRE's key is the
      instance's 0-based line in its split file, MNER's the image file name: the official ``*_dict.pth``);
      the small crops per image in ``small_crops_folder/index.json``, ``{"<image stem>": ["<file>", ...]}``
      (the official detector's ``img2crop.pth``). The first 3 listed are used.

    The small crops never default to the large ones. ``missing="masked"`` leaves absent crops out of
    attention; ``"zeros"`` (official) feeds them as zero images, attended like any other.
    """

    #: crops per group and their side in patches
    GROUPS = OFFICIAL_CROP_GROUPS
    INDEX_NAME = "index.json"

    def __init__(
        self,
        folder: Path | None,
        processors: Sequence[BaseImageProcessor],
        *,
        patch_size: int,
        crops_folder: Path | None,
        small_crops_folder: Path | None = None,
        crop_source: str = "stem",
        missing: str = "masked",
    ):
        """:param processors: one image processor per group, resizing to ``side * patch_size`` px"""
        if crop_source not in ("stem", "index") or missing not in ("masked", "zeros"):
            raise ValueError(f"crop_source must be 'stem' or 'index' and missing 'masked' or 'zeros', got {crop_source!r}, {missing!r}.")
        self.sides = [side * patch_size for _, side in self.GROUPS]
        self.crop_source, self.missing_images = crop_source, missing
        if crops_folder is None:
            warnings.warn(
                "the official RE / NER vision input is object crops (--crops) and no crops folder was given: "
                "the vision side is the class token alone" + (" and zero crops" if missing == "zeros" else ""),
                stacklevel=2,
            )
        folders = (crops_folder, small_crops_folder)
        self.loaders = [
            InstanceImages(folder, processor, crops_folder=crops, max_crops=count)
            for processor, crops, (count, _) in zip(processors, folders, self.GROUPS)
        ]
        self.indexes: list[dict | None] = [None, None]
        if crop_source == "index":
            self.indexes = [_read_index(crops) if crops is not None else None for crops in folders]

    @classmethod
    def group_positions(cls) -> tuple[int, ...]:
        """Visual tokens per group: ``count * side**2``, i.e. ``(48, 12)``."""
        return tuple(count * side * side for count, side in cls.GROUPS)

    @property
    def missing(self) -> set[str]:
        return set().union(*(loader.missing for loader in self.loaders))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        return [item for loader in self.loaders for item in loader.skipped]

    def _group_crops(self, group: int, name: str | None, key: str | None, split: str | None) -> list[torch.Tensor]:
        loader, index = self.loaders[group], self.indexes[group]
        if self.crop_source == "stem":
            return loader.crops(name)
        if index is None:
            return []
        if group == 0:
            listed = index.get(split, {}).get(key, []) if key is not None else []
        else:
            listed = index.get(PurePath(name).stem, []) if name else []
        return loader.listed_crops(listed)

    def prepare(
        self,
        names: Sequence[str | None],
        *,
        keys: Sequence[str | None] | None = None,
        split: str | None = None,
        progress: bool = True,
    ) -> list[tuple[list[torch.Tensor], ...]]:
        """Both crop groups of every instance, in order.

        :param keys: each instance's key in the large crops' index (``crop_source="index"``)
        :param split: ``train``, ``dev`` or ``test``: the part of the large crops' index to read
        """
        keys = list(keys) if keys is not None else [None] * len(names)
        return [
            tuple(self._group_crops(group, name, key, split) for group in range(len(self.GROUPS)))
            for name, key in tqdm(list(zip(names, keys)), desc="crops", unit="instance", disable=not progress, leave=False)
        ]

    def batch(self, items: Sequence[tuple[list[torch.Tensor], ...]]) -> ImageBatch:
        """Always both groups at their fixed sizes (the positions need them); absent crops are zero
        images, masked (``missing="masked"``) or attended (``"zeros"``)."""
        pixels, masks = [], []
        for group, (count, _) in enumerate(self.GROUPS):
            shape = (3, self.sides[group], self.sides[group])
            group_pixels = torch.zeros(len(items), count, *shape)
            group_mask = torch.full((len(items), count), self.missing_images == "zeros", dtype=torch.bool)
            for row, item in enumerate(items):
                for column, crop in enumerate(item[group][:count]):
                    group_pixels[row, column] = crop
                    group_mask[row, column] = True
            pixels.append(group_pixels)
            masks.append(group_mask)
        return pixels, masks

    def summary(self, items: Sequence[tuple[list[torch.Tensor], ...]]) -> dict:
        """JSON-ready counts for one split: instances with / without any crop, crops per group."""
        with_image = sum(any(group for group in item) for item in items)
        return {
            "instances": len(items),
            "with_image": with_image,
            "text_only": len(items) - with_image,
            "crops": [sum(len(item[group]) for item in items) for group in range(len(self.GROUPS))],
        }

    def file_summary(self) -> dict:
        """JSON-ready: missing and skipped crop files of both groups."""
        skipped = self.skipped
        return {
            "missing": len(self.missing),
            "unreadable": [path for path, _ in skipped],
            "skipped": [{"path": path, "reason": reason} for path, reason in skipped],
        }


def _read_index(folder: Path) -> dict | None:
    """``folder/index.json`` (a crop index), or None (with a warning) when the folder has none.

    :raises DataError: naming the file when it is not a JSON object of lists of file names
    """
    path = Path(folder) / OfficialCropImages.INDEX_NAME
    if not os.path.lexists(path):
        warnings.warn(f"crop_source='index' and {path} does not exist: no crops from {folder}", stacklevel=3)
        return None
    try:
        index = json.loads(read_bounded(path, 2**28).decode("utf-8-sig"))
    except DataError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise DataError(path, f"not a valid UTF-8 JSON crop index ({error})") from error

    def lists(mapping: object) -> bool:
        return isinstance(mapping, dict) and all(
            isinstance(files, list) and all(isinstance(name, str) for name in files) for files in mapping.values()
        )

    if not isinstance(index, dict) or not (lists(index) or all(lists(part) for part in index.values())):
        raise DataError(path, "a crop index maps keys to lists of file names (per split for the large crops)")
    return index
