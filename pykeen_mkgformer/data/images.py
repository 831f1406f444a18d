"""Entity images: decoding (Pillow), preprocessing (transformers image processors), an on-disk cache.

Every image is decoded and resized once; the resized pixels ``u`` are stored as ``uint8`` in
memory-mapped files (one per resolution), keyed by the image files' SHA-256, the processor's settings
and the layout. A lookup only gathers rows from those files and normalises them the way the
processor does,

.. math::

    x = \\frac{u \\cdot \\text{rescale\\_factor} - \\mu}{\\sigma}

so a second epoch (or a second run) decodes nothing, and storing ``uint8`` loses nothing (the
Pillow-backed processors resize in 8 bits; float-valued resizes would be rounded).

Decoding is :func:`pykeen_mkgformer.data.decoding.load_rgb`, the decoder every task uses. A cache
entry is built in a temporary folder and renamed into place when complete, so a killed build never
leaves an entry behind; an entry whose files are missing, truncated, of the wrong size or
unparsable (damaged on disk, or by hand) is detected when it is opened and rebuilt.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
import os
import pathlib
import shutil
import socket
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .decoding import file_digest, load_rgb
from .errors import ImageError

__all__ = [
    "ImageLayout",
    "PixelCache",
    "load_rgb",
    "image_processor_for",
    "resized_processor",
    "OFFICIAL_CROP_GROUPS",
    "ImageError",
]

logger = logging.getLogger(__name__)

#: skipped images warned about one by one; the others are counted in one warning
WARN_EACH = 5

#: bump when the stored format or the decoded pixels change (2: the shared decoder, EXIF
#: orientation, 16-bit scaling; verified entries)
CACHE_FORMAT_VERSION = 2


#: the official RE / NER vision input: ``(count, side in patches)`` of each object-crop group
OFFICIAL_CROP_GROUPS: tuple[tuple[int, int], ...] = ((3, 4), (3, 2))


@dataclasses.dataclass(frozen=True)
class ImageLayout:
    """How many images an item gets at which resolution.

    ``groups`` holds one ``(count, side)`` pair per resolution; an item's images fill the slots in
    order (the first ``groups[0][0]`` images at ``groups[0][1]`` px, the next ones at the next size).
    """

    groups: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        groups = tuple((int(count), int(side)) for count, side in self.groups)
        if not groups:
            raise ValueError("an ImageLayout needs at least one (count, side) group")
        for count, side in groups:
            if count < 1 or side < 1:
                raise ValueError(f"invalid (count, side) group {(count, side)} in {groups}")
        object.__setattr__(self, "groups", groups)

    @classmethod
    def official(cls) -> ImageLayout:
        """The official MKGformer input: 1 image at 224 px, 3 at 128 px and 3 at 64 px."""
        return cls(groups=((1, 224), (3, 128), (3, 64)))

    @classmethod
    def official_crops(cls, patch_size: int) -> ImageLayout:
        """The official RE / NER object crops: 3 at 4 patches a side and 3 at 2 (:data:`OFFICIAL_CROP_GROUPS`)."""
        return cls(groups=tuple((count, side * patch_size) for count, side in OFFICIAL_CROP_GROUPS))

    @classmethod
    def single(cls, size: int, count: int = 1) -> ImageLayout:
        """``count`` images, all at ``size`` px."""
        return cls(groups=((count, size),))

    @property
    def max_images(self) -> int:
        """The number of image slots per item."""
        return sum(count for count, _ in self.groups)

    def slots(self) -> list[tuple[int, int]]:
        """``(group, position in group)`` for every slot, in filling order."""
        return [(g, j) for g, (count, _) in enumerate(self.groups) for j in range(count)]


# image processors --------------------------------------------------------------------------------


def _processor_settings(processor: Any) -> dict[str, Any]:
    """The processor's settings that change the pixels, as JSON-able values."""
    settings = {"class": type(processor).__name__}
    for key, value in sorted(processor.to_dict().items()):
        if key in {"image_processor_type", "processor_class", "auto_map", "_processor_class"}:
            continue
        settings[key] = value
    return json.loads(json.dumps(settings, default=lambda value: getattr(value, "value", str(value))))


def _resize_kwargs(processor: Any, side: int) -> dict[str, Any]:
    """Overrides that make the processor output ``side`` x ``side`` images."""
    size = getattr(processor, "size", None) or {}
    if getattr(processor, "do_center_crop", False) and getattr(processor, "crop_size", None):
        # CLIP style: shortest edge to side, then a centre crop of side x side
        return dict(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    if "shortest_edge" in size:
        return dict(size={"shortest_edge": side}, do_center_crop=True, crop_size={"height": side, "width": side})
    return dict(size={"height": side, "width": side})


def _resize(processor: Any, image: Image.Image, side: int) -> np.ndarray:
    """Resize (and crop) one RGB image with the processor, without rescaling: ``(3, side, side)`` uint8."""
    output = processor(
        images=[image],
        do_rescale=False,
        do_normalize=False,
        return_tensors="np",
        **_resize_kwargs(processor, side),
    )
    pixels = np.asarray(output["pixel_values"][0])
    if pixels.shape != (3, side, side):
        raise RuntimeError(f"{type(processor).__name__} produced shape {pixels.shape}, expected {(3, side, side)}")
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def image_processor_for(vision: Any) -> Any:
    """Build the transformers image processor that belongs to a vision backbone.

    :param vision: a checkpoint folder or Hugging Face name (its ``preprocessor_config.json`` is used
        when there is one), or a vision config (a :class:`transformers.PretrainedConfig` or a dict with
        ``model_type``), for which a CLIP processor (CLIP configs) or a ViT processor (others) with the
        config's ``image_size`` is built.
    :return: an image processor
    """
    import transformers

    def pil_class(name: str) -> Any:
        # transformers 5 falls back to the Pillow backend without torchvision; ask for it directly
        return getattr(transformers, f"{name}Pil", None) or getattr(transformers, name)

    config = vision
    if isinstance(vision, str | pathlib.Path):
        folder = pathlib.Path(vision)
        if folder.joinpath("preprocessor_config.json").is_file() or not folder.exists():
            try:
                return transformers.AutoImageProcessor.from_pretrained(str(vision))
            except (OSError, ValueError) as error:
                logger.info("no image processor for %s (%s); building one from its config", vision, error)
        config = transformers.AutoConfig.from_pretrained(str(vision))
    elif isinstance(vision, dict):
        kwargs = dict(vision)
        config = transformers.AutoConfig.for_model(kwargs.pop("model_type"), **kwargs)
    config = getattr(config, "vision_config", None) or config
    image_size = int(getattr(config, "image_size", 224))
    if "clip" in getattr(config, "model_type", ""):
        return pil_class("CLIPImageProcessor")(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        )
    return pil_class("ViTImageProcessor")(size={"height": image_size, "width": image_size})


def resized_processor(processor: Any, side: int) -> Any:
    """A copy of ``processor`` that resizes (and centre-crops, where it crops) to ``side`` px."""
    import copy

    resized = copy.deepcopy(processor)
    if getattr(resized, "do_center_crop", False):
        resized.size = {"shortest_edge": side}
        resized.crop_size = {"height": side, "width": side}
    else:
        resized.size = {"height": side, "width": side}
    return resized


# the cache ---------------------------------------------------------------------------------------


def default_cache_dir() -> pathlib.Path:
    """``$PYSTOW_HOME/pykeen/mkgformer/pixels`` (PyKEEN's data home)."""
    import pystow

    return pystow.join("pykeen", "mkgformer", "pixels")


def _build_prefix(key: str) -> str:
    """Temporary build folders of an entry: ``.<key>.<host>.<pid>.<random>``."""
    return f".{key}.{socket.gethostname()}."


def _remove_stale_builds(root: pathlib.Path, key: str) -> None:
    """Delete this entry's temporary folders left by killed builds on this host (their process is gone)."""
    prefix = _build_prefix(key)
    for folder in root.glob(f"{glob.escape(prefix)}*"):
        pid_text = folder.name[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        logger.info("removing %s, left by a build that was killed", folder)
        shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _discard(folder: pathlib.Path) -> None:
    """Move a damaged entry out of the way (atomically), then delete it."""
    aside = folder.with_name(f".{folder.name}.damaged.{os.getpid()}")
    try:
        os.replace(folder, aside)
    except OSError:
        return  # another process moved or replaced it
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        aside.unlink(missing_ok=True)


def _sync_folder(folder: pathlib.Path) -> None:
    """Flush a folder's files and the folder itself to disk (so a rename publishes complete files)."""
    for path in folder.iterdir():
        with path.open("rb") as file:
            os.fsync(file.fileno())
    if hasattr(os, "O_DIRECTORY"):
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


class PixelCache:
    """Preprocessed entity images, decoded once and memory-mapped from disk.

    ``image_paths[i]`` are item ``i``'s image files; they fill the layout's ``layout.max_images``
    slots in order, and files after the slots are full are not used (logged). Files that cannot be
    used are warned about once by name, listed in :attr:`skipped` as ``(path, reason)``, and leave
    their slot to the next file, also to one beyond the first ``max_images``; items with fewer usable
    images get ``False`` in the mask.
    """

    def __init__(
        self,
        image_paths: Sequence[Sequence[str | pathlib.Path]],
        *,
        processor: Any,
        layout: ImageLayout | None = None,
        cache_dir: str | pathlib.Path | None = None,
        progress: bool = True,
    ) -> None:
        """Preprocess (or find in the cache) every image.

        :param image_paths: per item, its image files
        :param processor: a transformers image processor (see :func:`image_processor_for`)
        :param layout: images per resolution; default :meth:`ImageLayout.official`
        :param cache_dir: where cache entries live; default :func:`default_cache_dir`
        :param progress: show tqdm progress bars
        """
        self.layout = layout or ImageLayout.official()
        self.processor = processor
        self.num_items = len(image_paths)
        self.progress = progress
        # the normalisation applied at lookup
        self._rescale = float(processor.rescale_factor) if getattr(processor, "do_rescale", True) else 1.0
        do_normalize = getattr(processor, "do_normalize", True)
        mean = processor.image_mean if do_normalize else (0.0, 0.0, 0.0)
        std = processor.image_std if do_normalize else (1.0, 1.0, 1.0)
        self._mean = torch.as_tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self._std = torch.as_tensor(std, dtype=torch.float32).view(3, 1, 1)

        paths = [[pathlib.Path(p) for p in item] for item in image_paths]
        capped = sum(max(0, len(item) - self.layout.max_images) for item in paths)
        if capped:
            logger.info(
                "%d images beyond the layout's %d per item are used only in place of unreadable ones "
                "(%d items have more)",
                capped,
                self.layout.max_images,
                sum(len(item) > self.layout.max_images for item in paths),
            )

        unique = sorted({p for item in paths for p in item})
        digests = {
            p: file_digest(p)
            for p in tqdm(unique, desc="hashing images", unit="file", disable=not progress or not unique)
        }
        key_source = json.dumps(
            dict(
                version=CACHE_FORMAT_VERSION,
                processor=_processor_settings(processor),
                layout=self.layout.groups,
                items=[[digests[p] for p in item] for item in paths],
            ),
            sort_keys=True,
        )
        self.key = hashlib.sha256(key_source.encode("utf-8")).hexdigest()[:32]
        root = pathlib.Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.path = root.joinpath(self.key)
        self._open_or_build(paths, root)

    # building ----------------------------------------------------------------------------------

    def _open_or_build(self, paths: list[list[pathlib.Path]], root: pathlib.Path) -> None:
        """Open the entry; build it when absent, rebuild it when damaged."""
        problem = self._verify() if self.path.exists() else "absent"
        if problem is not None:
            if problem != "absent":
                warnings.warn(f"pixel cache entry {self.path} is damaged ({problem}); rebuilding it", stacklevel=4)
                _discard(self.path)
            self._build(paths, root)
            problem = self._verify()
            if problem is not None:
                raise RuntimeError(f"pixel cache entry {self.path} is unusable right after building it: {problem}")
        self._open()

    def _build(self, paths: list[list[pathlib.Path]], root: pathlib.Path) -> None:
        """Decode, resize and store every image; written to a temporary folder, then renamed.

        Each group's pixels go to a raw ``uint8`` file of rows ``(3, side, side)``, allocated for the
        most rows the group can need and truncated to the rows used. ``meta.json`` (written last)
        records every file's size; the files are flushed to disk before the folder is renamed.
        """
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(root, self.key)
        slots = self.layout.slots()
        groups = self.layout.groups
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"{_build_prefix(self.key)}{os.getpid()}.", dir=root))
        try:
            bounds = [sum(min(count, len(item)) for item in paths) for count, _ in groups]
            pixels = [
                np.memmap(tmp.joinpath(f"pixels_{g}.u8"), dtype=np.uint8, mode="w+", shape=(bound, 3, side, side))
                if bound
                else None
                for g, (bound, (_, side)) in enumerate(zip(bounds, groups, strict=True))
            ]
            index = [np.full((self.num_items, count), -1, dtype=np.int64) for count, _ in groups]
            num_rows = [0] * len(groups)
            row_of: dict[tuple[pathlib.Path, int], int] = {}  # (file, group) -> row, files shared by items
            failed: dict[pathlib.Path, str] = {}
            total = sum(map(len, paths))
            with tqdm(
                total=total, desc="preprocessing images", unit="image", disable=not self.progress or not total
            ) as bar:
                for i, item in enumerate(paths):
                    filled = 0  # slots are filled in order; a skipped file leaves its slot to the next
                    for k, path in enumerate(item):
                        if filled == len(slots):  # full: the remaining files are not read
                            bar.update(len(item) - k)
                            break
                        bar.update()
                        if path in failed:
                            continue
                        g, j = slots[filled]
                        if (path, g) not in row_of:
                            try:
                                image = load_rgb(path)
                            except ImageError as error:
                                failed[path] = error.reason
                                continue
                            pixels[g][num_rows[g]] = _resize(self.processor, image, groups[g][1])
                            row_of[path, g] = num_rows[g]
                            num_rows[g] += 1
                        index[g][i, j] = row_of[path, g]
                        filled += 1
            sizes = {}
            for g, (_, side) in enumerate(groups):
                np.save(tmp.joinpath(f"index_{g}.npy"), index[g])
                sizes[f"index_{g}.npy"] = tmp.joinpath(f"index_{g}.npy").stat().st_size
                if pixels[g] is not None:
                    pixels[g].flush()
                    pixels[g] = None
                    os.truncate(tmp.joinpath(f"pixels_{g}.u8"), num_rows[g] * 3 * side * side)
                    sizes[f"pixels_{g}.u8"] = num_rows[g] * 3 * side * side
            tmp.joinpath("meta.json").write_text(
                json.dumps(
                    dict(
                        version=CACHE_FORMAT_VERSION,
                        layout=groups,
                        num_items=self.num_items,
                        num_rows=num_rows,
                        files=sizes,
                        # ASCII-escaped: file names that are not valid UTF-8 survive the round trip
                        skipped=sorted((str(path), reason) for path, reason in failed.items()),
                    ),
                    indent=1,
                ),
                encoding="utf-8",
            )
            _sync_folder(tmp)
            try:
                os.replace(tmp, self.path)
            except OSError:
                # another process built the same entry meanwhile
                if self._verify() is not None:
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info("stored preprocessed images in %s", self.path)

    # opening and checking ----------------------------------------------------------------------

    def _read_meta(self) -> dict[str, Any]:
        return json.loads(self.path.joinpath("meta.json").read_text(encoding="utf-8"))

    def _verify(self) -> str | None:
        """Why the entry at :attr:`path` cannot be used (None when it is complete and consistent).

        Checks ``meta.json`` (present, parsable, this format version, layout and item count), every
        index (present, the right shape, rows within range) and every pixel file (present, exactly
        the recorded size), without reading the pixels.
        """
        try:
            meta = self._read_meta()
        except FileNotFoundError:
            return "meta.json is missing (an unfinished build?)"
        except (OSError, ValueError) as error:
            return f"meta.json is unreadable ({error})"
        if not isinstance(meta, dict) or meta.get("version") != CACHE_FORMAT_VERSION:
            return f"meta.json is not of format version {CACHE_FORMAT_VERSION}"
        try:
            layout = [tuple(group) for group in meta["layout"]]
            num_rows = [int(rows) for rows in meta["num_rows"]]
            sizes = dict(meta["files"])
            num_items = int(meta["num_items"])
            if not all(len(entry) == 2 for entry in meta["skipped"]):
                raise ValueError("'skipped' holds entries that are not (path, reason)")
        except (KeyError, TypeError, ValueError) as error:
            return f"meta.json lacks a field or has a wrong one ({error!r})"
        if layout != list(self.layout.groups) or num_items != self.num_items or len(num_rows) != len(layout):
            return "meta.json describes another layout or item count"
        for g, ((count, side), rows) in enumerate(zip(self.layout.groups, num_rows, strict=True)):
            index_path = self.path.joinpath(f"index_{g}.npy")
            try:
                if index_path.stat().st_size != sizes.get(index_path.name):
                    return f"{index_path.name} has {index_path.stat().st_size} bytes, not {sizes.get(index_path.name)}"
                index = np.load(index_path, allow_pickle=False)
            except (OSError, ValueError, EOFError) as error:
                return f"{index_path.name} is unreadable ({error})"
            if index.shape != (self.num_items, count) or index.dtype != np.int64:
                return f"{index_path.name} has shape {index.shape} ({index.dtype}), not {(self.num_items, count)} (int64)"
            if index.size and (index.min() < -1 or index.max() >= rows):
                return f"{index_path.name} points outside the {rows} stored rows"
            if rows:
                pixels_path = self.path.joinpath(f"pixels_{g}.u8")
                expected = rows * 3 * side * side
                try:
                    actual = pixels_path.stat().st_size
                except OSError as error:
                    return f"{pixels_path.name} is missing ({error.strerror})"
                if actual != expected or sizes.get(pixels_path.name) != expected:
                    return f"{pixels_path.name} has {actual:,} bytes, not {expected:,} (truncated or overwritten)"
        return None

    def _open(self) -> None:
        meta = self._read_meta()
        self.skipped: list[tuple[str, str]] = [(str(path), str(reason)) for path, reason in meta["skipped"]]
        # the first few named one by one, the rest in one warning (a data set may miss thousands of images)
        for path, reason in self.skipped[:WARN_EACH]:
            warnings.warn(f"image skipped: {path}: {reason}", stacklevel=4)
        if len(self.skipped) > WARN_EACH:
            from .labels import summarize

            rest = [f"{path}: {reason}" for path, reason in self.skipped[WARN_EACH:]]
            warnings.warn(summarize(rest, "more images skipped (all in PixelCache.skipped)"), stacklevel=4)
        if self.skipped:
            logger.warning("%d image files were skipped (see PixelCache.skipped)", len(self.skipped))
        self._map(meta)

    def _map(self, meta: dict[str, Any]) -> None:
        """Open the index and the memory maps."""
        self._index = [
            torch.as_tensor(np.load(self.path.joinpath(f"index_{g}.npy"), allow_pickle=False))
            for g in range(len(self.layout.groups))
        ]
        self._pixels = [
            np.memmap(self.path.joinpath(f"pixels_{g}.u8"), dtype=np.uint8, mode="r", shape=(rows, 3, side, side))
            if rows
            else None
            for g, (rows, (_, side)) in enumerate(zip(meta["num_rows"], self.layout.groups, strict=True))
        ]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started with "spawn" pickle the cache: send the folder, not the pixels
        return {k: v for k, v in self.__dict__.items() if k not in {"_index", "_pixels"}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        problem = self._verify()
        if problem is not None:
            raise RuntimeError(f"pixel cache entry {self.path} changed since it was opened: {problem}")
        self._map(self._read_meta())

    # lookup ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.num_items

    def num_images(self, index: int) -> int:
        """The number of images item ``index`` has (after skipping and capping)."""
        return int(sum((group[index] >= 0).sum() for group in self._index))

    def lookup(
        self,
        indices: torch.Tensor,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Gather the normalised pixels of some items.

        The ``uint8`` rows are gathered on the CPU and moved to ``device`` before they are converted
        and normalised there, so a GPU receives a quarter of the bytes of float pixels.

        :param indices: shape: (B,), item ids
        :param device: where the tensors go; default: the device of ``indices``
        :param dtype: the floating point type of ``pixel_values``
        :return: ``pixel_values``: one tensor ``(B, count_g, 3, side_g, side_g)`` per group, and
            ``image_mask``: one bool tensor ``(B, count_g)`` per group (False where an item has no image);
            empty slots hold zeros
        """
        indices = torch.as_tensor(indices, dtype=torch.long)
        device = torch.device(device) if device is not None else indices.device
        indices = indices.view(-1).cpu()
        # x = u * rescale / std - mean / std, in float32
        scale = (self._rescale / self._std).to(device)
        shift = (self._mean / self._std).to(device)
        pixel_values, image_mask = [], []
        for g, (count, side) in enumerate(self.layout.groups):
            rows = self._index[g][indices]
            mask = rows >= 0
            raw = np.zeros((len(indices), count, 3, side, side), dtype=np.uint8)
            if mask.any():
                selected = rows[mask].numpy()
                order = np.argsort(selected, kind="stable")  # read the memory map in file order
                gathered = np.empty((len(selected), 3, side, side), dtype=np.uint8)
                gathered[order] = self._pixels[g][selected[order]]
                raw[mask.numpy()] = gathered
            out = torch.from_numpy(raw).to(device, non_blocking=True).float().mul_(scale).sub_(shift)
            mask = mask.to(device)
            out.masked_fill_(~mask.view(*mask.shape, 1, 1, 1), 0.0)
            pixel_values.append(out.to(dtype))
            image_mask.append(mask)
        return pixel_values, image_mask
