"""The IDX/MNIST loader: exact round trips (gzip and raw), and one clear error for every kind of bad file.

Small synthetic IDX files are written to ``tmp_path``; the real MNIST files are read only through the
``data_root`` fixture (skipped when the data is missing).
"""

import gzip
import os

import pytest
import torch

from actadapt.cli import main
from actadapt.experiments.config import ConfigError
from actadapt.experiments.data.mnist import (
    IDX_IMAGES,
    IDX_LABELS,
    MNIST_FILES,
    DataError,
    find_mnist_dir,
    load_mnist,
    read_idx,
)


def idx_bytes(magic: int, array: torch.Tensor) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.to(torch.uint8).contiguous().numpy().tobytes()


def write(path, data: bytes, gz: bool = True) -> str:
    path = str(path) + (".gz" if gz else "")
    with open(path, "wb") as fh:
        fh.write(gzip.compress(data) if gz else data)
    return path


def make_mnist(folder, n_train=30, n_test=10, size=28, gz=True, seed=0):
    """A fake MNIST folder (four IDX files); returns the tensors written."""
    os.makedirs(folder, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = torch.randint(0, 256, (n, size, size), generator=g, dtype=torch.uint8)
        labels = torch.arange(n, dtype=torch.uint8) % 10
        img_stem, lab_stem = MNIST_FILES[split]
        write(os.path.join(folder, img_stem), idx_bytes(IDX_IMAGES, images), gz)
        write(os.path.join(folder, lab_stem), idx_bytes(IDX_LABELS, labels), gz)
        out[split] = (images, labels.long())
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    a = torch.randint(0, 256, (7, 5, 3), dtype=torch.uint8)
    path = write(tmp_path / "x-idx3-ubyte", idx_bytes(IDX_IMAGES, a), gz)
    b = read_idx(path, IDX_IMAGES)
    assert b.dtype == torch.uint8 and b.shape == (7, 5, 3) and torch.equal(a, b)
    b[0, 0, 0] = 1  # a writable copy, not a view of read-only bytes


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    a = torch.arange(12, dtype=torch.uint8)
    path = tmp_path / "labels-no-suffix"
    path.write_bytes(gzip.compress(idx_bytes(IDX_LABELS, a)))
    assert torch.equal(read_idx(str(path), IDX_LABELS), a)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("inside", [True, False])
def test_load_mnist_from_root_or_the_folder_itself(tmp_path, gz, inside):
    folder = tmp_path / "mnist" if inside else tmp_path / "fashion"
    written = make_mnist(folder, gz=gz)
    root = tmp_path if inside else folder  # a data root with mnist/, or an MNIST-layout folder itself
    assert find_mnist_dir(str(root)) == str(folder)
    data = load_mnist(str(root))
    for split in ("train", "test"):
        assert torch.equal(data[split].images, written[split][0])
        assert torch.equal(data[split].labels, written[split][1])
        assert data[split].labels.dtype == torch.int64


def test_data_error_is_a_config_error():
    assert issubclass(DataError, ConfigError) and issubclass(DataError, ValueError)


def test_missing_file_names_it_and_where_to_get_the_data(tmp_path):
    make_mnist(tmp_path / "mnist")
    os.remove(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError) as err:
        load_mnist(str(tmp_path))
    msg = str(err.value)
    assert "MNIST file not found" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert "yann.lecun.com" in msg and "--data-dir" in msg and "\n" not in msg


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_mnist(str(tmp_path / "nope"))


def _corrupt(tmp_path, kind):
    """A fake MNIST folder whose training images file is broken in one way; returns the broken path."""
    make_mnist(tmp_path)
    path = str(tmp_path / "train-images-idx3-ubyte.gz")
    good = gzip.decompress(open(path, "rb").read())
    if kind == "magic":
        data, gz = IDX_LABELS.to_bytes(4, "big") + good[4:], True
    elif kind == "short-read":
        data, gz = good[:-100], True
    elif kind == "trailing":
        data, gz = good + b"\0" * 5, True
    elif kind == "header":
        data, gz = good[:10], True
    elif kind == "tiny":
        data, gz = b"\0\0", True
    elif kind == "gzip-truncated":
        raw = gzip.compress(good)
        with open(path, "wb") as fh:
            fh.write(raw[: len(raw) // 2])
        return path
    elif kind == "gzip-corrupt":
        raw = bytearray(gzip.compress(good))
        raw[20:40] = b"\xff" * 20
        with open(path, "wb") as fh:
            fh.write(bytes(raw))
        return path
    os.remove(path)
    return write(path[:-3], data, gz)


@pytest.mark.parametrize("kind, message", [
    ("magic", "bad magic number 2049 (0x00000801); expected 2051"),
    ("short-read", "truncated (short read): the header announces 30 x 28 x 28 = 23520 bytes of data, the file holds 23420"),
    ("trailing", "wrong count: the header announces 30 x 28 x 28 = 23520 bytes of data, but 5 more bytes follow"),
    ("header", "truncated: the header needs 16 bytes, the file has 10"),
    ("tiny", "not an IDX file: 2 bytes"),
    ("gzip-truncated", "truncated gzip file"),
    ("gzip-corrupt", "corrupt gzip file"),
])
def test_corrupt_file_gives_one_clear_error(tmp_path, kind, message):
    path = _corrupt(tmp_path, kind)
    with pytest.raises(DataError) as err:
        load_mnist(str(tmp_path))
    msg = str(err.value)
    assert msg.startswith(path + ": ") and message in msg, msg
    assert "yann.lecun.com" in msg and "\n" not in msg


def test_label_count_must_match_image_count(tmp_path):
    make_mnist(tmp_path)
    os.remove(tmp_path / "t10k-labels-idx1-ubyte.gz")
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(IDX_LABELS, torch.zeros(9, dtype=torch.uint8)), gz=False)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: wrong count: 9 labels for the 10 images"):
        load_mnist(str(tmp_path))


def test_label_out_of_range(tmp_path):
    make_mnist(tmp_path)
    labels = torch.zeros(30, dtype=torch.uint8)
    labels[17] = 12
    write(tmp_path / "train-labels-idx1-ubyte", idx_bytes(IDX_LABELS, labels))
    with pytest.raises(DataError, match=r"label 12 at index 17 is out of range 0-9"):
        load_mnist(str(tmp_path))


def test_train_and_test_image_sizes_must_agree(tmp_path):
    make_mnist(tmp_path)
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(IDX_IMAGES, torch.zeros(10, 32, 32, dtype=torch.uint8)))
    with pytest.raises(DataError, match=r"images of \(32, 32\) pixels, but the training images are \(28, 28\)"):
        load_mnist(str(tmp_path))


def test_cli_prints_a_data_error_as_one_line(capsys, tmp_path):
    _corrupt(tmp_path / "data" / "mnist", "magic")
    code = main(["reproduce", "table2", "--preset", "smoke", "--data-dir", str(tmp_path / "data"),
                 "--out", str(tmp_path / "run"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("actadapt: error: ") and err.count("\n") == 1
    assert "train-images-idx3-ubyte.gz: bad magic number 2049" in err and "Traceback" not in err


def test_real_mnist(data_root):
    data = load_mnist(data_root)
    tr, te = data["train"], data["test"]
    assert tr.images.shape == (60000, 28, 28) and te.images.shape == (10000, 28, 28)
    assert tr.images.dtype == torch.uint8 and int(tr.images.max()) == 255
    # the counts in shared/data/README.md
    assert torch.bincount(tr.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(te.labels, minlength=10).sum() == 10000
    assert load_mnist(os.path.join(data_root, "mnist")) is data  # the folder itself works, and is cached
