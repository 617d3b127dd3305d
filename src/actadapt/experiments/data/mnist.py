"""MNIST (and any data set in its four-file IDX layout: Fashion-MNIST, KMNIST, ...) as in-memory tensors.

The IDX format (LeCun et al.): a big-endian header, then raw bytes::

    0x00 0x00 TYPE NDIM     magic; TYPE 0x08 = unsigned byte; so 2051 for images (3 dims), 2049 for labels
    NDIM x uint32           the sizes: images (count, rows, cols), labels (count,)
    prod(sizes) bytes       the data, row-major

Each file may be gzip-compressed (recognised by its content, not its name) or raw. Everything is checked
(magic, dims, byte counts, image and label counts, label range) and any problem raises :class:`DataError`,
one line naming the file, what is wrong and where to get the data. Nothing is downloaded.

A data set is held whole in memory: images ``uint8 (N, rows, cols)``, labels ``int64 (N,)``; MNIST's 70,000
images take 55 MB. Batches are then index selections (no per-sample Python).
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from typing import Dict, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from ..config import DataError, option

__all__ = ["DataError", "IDX_IMAGES", "IDX_LABELS", "MNIST_FILES", "Split", "find_mnist_dir", "read_idx",
           "load_mnist", "idx_sizes", "mnist_splits", "as_float", "MnistKeys"]

IDX_IMAGES = 2051  # 0x00000803: unsigned byte, 3 dims
IDX_LABELS = 2049  # 0x00000801: unsigned byte, 1 dim
# split -> (images, labels) file stems; each is looked for as STEM.gz, then STEM
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
WHERE = (
    "get the four IDX files of MNIST (https://yann.lecun.com/exdb/mnist/, mirror "
    "https://ossci-datasets.s3.amazonaws.com/mnist/) into DATA/mnist/ and pass --data-dir DATA or set "
    "$ACTADAPT_DATA (or pass the folder holding the four files itself)"
)


class Split(NamedTuple):
    images: Tensor  # uint8 (N, rows, cols)
    labels: Tensor  # int64 (N,)


def _stem_path(folder: str, stem: str) -> Optional[str]:
    for name in (stem + ".gz", stem):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def _has_layout(folder: str) -> bool:
    return all(_stem_path(folder, s) for pair in MNIST_FILES.values() for s in pair)


def find_mnist_dir(root: str, subdir: str = "mnist") -> str:
    """The folder holding the four IDX files: ``root`` itself if it has them, else ``root/subdir``.

    Raises :class:`DataError` naming the first missing file and where to get the data.
    """
    if not root:
        raise DataError(f"no data folder given for {subdir}: {WHERE}")
    if not os.path.isdir(root):
        raise DataError(f"data folder {root!r} does not exist; {WHERE}")
    for folder in (root, os.path.join(root, subdir)):
        if _has_layout(folder):
            return folder
    folder = os.path.join(root, subdir) if os.path.isdir(os.path.join(root, subdir)) else root
    missing = next(s for pair in MNIST_FILES.values() for s in pair if _stem_path(folder, s) is None)
    raise DataError(
        f"MNIST file not found: {os.path.join(folder, missing + '.gz')} (nor the uncompressed {missing}); "
        f"looked in {root!r} and {os.path.join(root, subdir)!r}; {WHERE}"
    )


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}; {WHERE}") from None
    if raw[:2] != b"\x1f\x8b":  # not gzip: the raw IDX file
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise DataError(f"{path}: truncated gzip file (the compressed stream ends early); {WHERE}") from None
    except (OSError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip file ({err}); {WHERE}") from None


def read_idx(path: str, magic: int) -> Tensor:
    """The array stored in the IDX file ``path`` (gzip or raw) as a ``uint8`` tensor; checks ``magic``.

    Raises :class:`DataError` for a bad magic number, a short header, a short read or trailing bytes.
    """
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number; {WHERE}")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        kind = {IDX_IMAGES: "images", IDX_LABELS: "labels"}.get(magic, "data")
        raise DataError(
            f"{path}: bad magic number {found} (0x{found:08x}); expected {magic} (0x{magic:08x}, IDX unsigned-byte "
            f"{kind} with {magic & 0xFF} dims); not an IDX {kind} file; {WHERE}"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated: the header needs {header} bytes, the file has {len(data)}; {WHERE}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    expected = 1
    for d in dims:
        expected *= d
    got = len(data) - header
    if got < expected:
        raise DataError(
            f"{path}: truncated (short read): the header announces {' x '.join(map(str, dims))} = {expected} bytes "
            f"of data, the file holds {got}; {WHERE}"
        )
    if got > expected:
        raise DataError(
            f"{path}: wrong count: the header announces {' x '.join(map(str, dims))} = {expected} bytes of data, "
            f"but {got - expected} more bytes follow; {WHERE}"
        )
    if expected == 0:
        return torch.zeros(dims, dtype=torch.uint8)
    # a writable copy (frombuffer over the bytes object itself would share read-only memory)
    return torch.frombuffer(bytearray(memoryview(data)[header:]), dtype=torch.uint8).reshape(dims)


def idx_sizes(root: str, subdir: str = "mnist") -> Optional[Tuple[int, int]]:
    """``(images, pixels per image)`` over the train and test image files, read from their IDX headers alone
    (16 bytes each, through gzip where compressed); ``None`` when the files are missing or unreadable (the
    loader then says why)."""
    try:
        folder = find_mnist_dir(root, subdir)
        images, pixels = 0, 0
        for stem, _ in MNIST_FILES.values():
            path = _stem_path(folder, stem)
            with open(path, "rb") as fh:
                gz = fh.read(2) == b"\x1f\x8b"
            with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
                head = fh.read(16)
            if len(head) < 16 or int.from_bytes(head[:4], "big") != IDX_IMAGES:
                return None
            n, rows, cols = (int.from_bytes(head[4 * i: 4 * i + 4], "big") for i in (1, 2, 3))
            images, pixels = images + n, max(pixels, rows * cols)
        return images, pixels
    except (DataError, OSError, EOFError, zlib.error):
        return None


_CACHE: Dict[Tuple, Dict[str, Split]] = {}


def load_mnist(root: str, num_classes: int = 10, subdir: str = "mnist") -> Dict[str, Split]:
    """``{"train": Split, "test": Split}`` from ``root`` (a data root with ``subdir/``, or the folder itself).

    Checks that images and labels agree in count, that train and test images have the same size and that
    every label is in ``[0, num_classes)``. Results are cached per process (keyed on the files' sizes and
    modification times), so a worker running several cells reads the files once. Do not modify the
    returned tensors in place.
    """
    folder = find_mnist_dir(root, subdir)
    paths = {split: tuple(_stem_path(folder, s) for s in stems) for split, stems in MNIST_FILES.items()}
    stats = [(p, os.stat(p)) for pair in paths.values() for p in pair]
    key = tuple((p, st.st_size, st.st_mtime_ns) for p, st in stats) + (num_classes,)
    if key in _CACHE:
        return _CACHE[key]
    out: Dict[str, Split] = {}
    for split, (img_path, lab_path) in paths.items():
        images = read_idx(img_path, IDX_IMAGES)
        labels = read_idx(lab_path, IDX_LABELS)
        if images.shape[0] != labels.shape[0]:
            raise DataError(
                f"{lab_path}: wrong count: {labels.shape[0]} labels for the {images.shape[0]} images of "
                f"{img_path}; {WHERE}"
            )
        if images.shape[0] == 0:
            raise DataError(f"{img_path}: wrong count: the file holds no images; {WHERE}")
        if labels.numel() and int(labels.max()) >= num_classes:
            bad = int(labels.max())
            at = int((labels == bad).nonzero()[0])
            raise DataError(
                f"{lab_path}: label {bad} at index {at} is out of range 0-{num_classes - 1}; {WHERE}"
            )
        out[split] = Split(images, labels.long())
    if out["train"].images.shape[1:] != out["test"].images.shape[1:]:
        raise DataError(
            f"{paths['test'][0]}: images of {tuple(out['test'].images.shape[1:])} pixels, but the training images "
            f"are {tuple(out['train'].images.shape[1:])}; {WHERE}"
        )
    _CACHE.clear()  # keep one data set per process
    _CACHE[key] = out
    return out


def mnist_splits(root: str, val_size: int = 10_000, train_size: int = 0, test_size: int = 0) -> Tuple[Split, Split, Split]:
    """``(train, val, test)`` of the data set under ``root`` (views of :func:`load_mnist`'s tensors): the last
    ``val_size`` training images are held out for validation (the Theano LeNet tutorial's 50k/10k split), the
    first ``train_size`` of the rest kept for training (0: all), the first ``test_size`` test images (0: all).
    Bad sizes are a :class:`~..config.ConfigError` naming the config key."""
    from ..config import ConfigError

    if not root:
        raise DataError(f"no MNIST data folder: give --data-dir or set $ACTADAPT_DATA; {WHERE}")
    data = load_mnist(root)
    tr, te = data["train"], data["test"]
    n = tr.images.shape[0]
    if val_size >= n:
        raise ConfigError(f"config key 'val_size': expected fewer than the {n} training images, got {val_size}")
    cut = n - val_size
    train, val = Split(tr.images[:cut], tr.labels[:cut]), Split(tr.images[cut:], tr.labels[cut:])
    if train_size:
        train = Split(train.images[:train_size], train.labels[:train_size])
    if train.images.shape[0] < 2:
        raise ConfigError(f"config keys 'train_size'/'val_size': only {train.images.shape[0]} training images left; "
                          "need at least 2")
    return train, val, Split(te.images[:test_size], te.labels[:test_size]) if test_size else te


def as_float(images: Tensor) -> Tensor:
    """uint8 images ``(B, H, W)`` as a float batch ``(B, 1, H, W)`` in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)


@dataclass
class MnistKeys:
    """The config keys of the MNIST splits (a table's config subclasses it; see :func:`mnist_splits`)."""

    val_size: int = option(10_000, min=0, help="last training images held out for validation (Theano tutorial: "
                           "10,000); 0 trains on all")
    train_size: int = option(0, min=0, help="use only the first N of the remaining training images (0: all)")
    test_size: int = option(0, min=0, help="use only the first N test images (0: all 10,000)")

    def splits(self, root: str) -> Tuple[Split, Split, Split]:
        return mnist_splits(root, self.val_size, self.train_size, self.test_size)

    def mnist_choices(self) -> Dict[str, str]:
        """What the data are where the paper is silent (a report's choices section)."""
        return {
            "input": "pixels scaled to [0, 1]; no augmentation",
            "validation": (f"the last {self.val_size} training images (as the Theano LeNet tutorial's 50k/10k split), "
                           "used only for the curves") if self.val_size else "none (val_size=0): trained on every "
                                                                             "training image",
            "test accuracy": "on the standard test set"
            + (f" (first {self.test_size} images only)" if self.test_size else " (10,000 images)")
            + " after the last epoch; no early stopping or model selection",
        }
