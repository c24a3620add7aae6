"""Untrusted files: no code runs from a CIFAR batch, every download is verified, archives cannot escape."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from droplab import data
from droplab.data import files
from droplab.data.download import download, extract_tar, verify_file


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# ---------------------------------------------------------------- CIFAR batches: a restricted unpickler

class MakesADirectory:
    """Unpickling this calls ``os.makedirs(target)``: the code a hostile batch would run."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return os.makedirs, (self.target,)


def cifar_folder(root, batches: dict[str, bytes]):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for name, raw in batches.items():
        (folder / name).write_bytes(raw)
    return folder


def batch_bytes(n: int, n_labels: int | None = None, protocol: int = 2, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    labels = [int(v) for v in rng.integers(0, 10, n if n_labels is None else n_labels)]
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": labels,
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
    return pickle.dumps(batch, protocol=protocol)


@pytest.mark.parametrize("payload", ["reduce", "nested"])
def test_a_batch_that_calls_a_function_is_refused_and_the_function_never_runs(tmp_path, payload):
    target = tmp_path / "pwned"
    evil = MakesADirectory(str(target))
    obj = evil if payload == "reduce" else {b"data": np.zeros((1, 3072), np.uint8), b"labels": [evil]}
    folder = cifar_folder(tmp_path, {"test_batch": pickle.dumps(obj, protocol=2)})
    with pytest.raises(ValueError) as info:
        data.load("cifar10", "test", root=tmp_path)
    msg = one_line(info)
    assert msg.startswith(f"refusing CIFAR batch {folder / 'test_batch'}: it refers to ") and "makedirs" in msg
    assert not target.exists()


class OtherCodec:
    def __reduce__(self):
        import codecs

        return codecs.encode, ("x", "rot13")


def test_only_latin1_bytes_are_decoded(tmp_path):
    folder = cifar_folder(tmp_path, {"test_batch": pickle.dumps({b"data": OtherCodec()}, protocol=2)})
    with pytest.raises(ValueError, match=f"refusing CIFAR batch {folder / 'test_batch'}: it calls _codecs.encode"):
        data.load("cifar10", "test", root=tmp_path)


def test_old_numpy_module_names_load(tmp_path):
    """The published batches were pickled by an old numpy (``numpy.core.multiarray``): they load."""
    raw = batch_bytes(4)
    modern = b"numpy._core.multiarray" in raw
    old = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # protocol 2: text GLOBAL opcodes
    assert b"numpy.core.multiarray" in old and (modern or old == raw)
    cifar_folder(tmp_path, {"test_batch": old})
    ds = data.load("cifar10", "test", root=tmp_path)
    ref = pickle.loads(raw)
    assert torch.equal((ds.x * 255).round().to(torch.uint8).reshape(4, -1), torch.from_numpy(ref[b"data"]))
    assert ds.y.tolist() == ref[b"labels"]


def test_numpy_scalar_labels_and_str_keys_load(tmp_path):
    batch = {"data": np.full((2, 3072), 7, np.uint8), "labels": [np.int64(3), np.int64(9)]}
    cifar_folder(tmp_path, {"test_batch": pickle.dumps(batch)})
    assert data.load("cifar10", "test", root=tmp_path).y.tolist() == [3, 9]


# ---------------------------------------------------------------- downloads: HTTPS, checksum before use

def md5(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()


def test_a_download_that_does_not_match_is_refused_and_nothing_is_left(tmp_path, serve):
    url = "https://example.org/file.gz"
    opened = serve({url: b"tampered bytes"})
    with pytest.raises(ValueError) as info:
        download(url, tmp_path / "d" / "file.gz", "md5:" + md5(b"the published bytes"))
    msg = one_line(info)
    assert f"download of {url} does not match its published md5" in msg and "partial file was deleted" in msg
    assert opened == [url] and list((tmp_path / "d").iterdir()) == []


def test_a_matching_download_lands_atomically(tmp_path, serve):
    url = "https://example.org/file.gz"
    payload = bytes(range(256)) * 5000  # several chunks
    serve({url: payload})
    download(url, tmp_path / "file.gz", "sha256:" + hashlib.sha256(payload).hexdigest())
    assert (tmp_path / "file.gz").read_bytes() == payload and [p.name for p in tmp_path.iterdir()] == ["file.gz"]


def test_plain_http_and_network_errors_are_one_line(tmp_path, serve):
    opened = serve({})
    with pytest.raises(ValueError, match="only HTTPS URLs are fetched"):
        download("http://example.org/x", tmp_path / "x", "md5:" + md5(b""))
    with pytest.raises(ValueError, match=r"cannot download https://example.org/x: .*nothing was kept"):
        download("https://example.org/x", tmp_path / "x", "md5:" + md5(b""))
    with pytest.raises(ValueError, match="checksum must be"):
        download("https://example.org/x", tmp_path / "x", "crc32:00")
    assert opened == ["https://example.org/x"] and list(tmp_path.iterdir()) == []


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_mnist_download_is_verified_file_by_file(tmp_path, serve, monkeypatch):
    rng = np.random.default_rng(0)
    pages = {files.MNIST_URLS["mnist"] + "t10k-images-idx3-ubyte.gz": idx_gz(rng.integers(0, 256, (3, 28, 28))),
             files.MNIST_URLS["mnist"] + "t10k-labels-idx1-ubyte.gz": idx_gz(rng.integers(0, 10, (3,)))}
    opened = serve(pages)
    published = {url.rsplit("/", 1)[1][:-3]: md5(raw) for url, raw in pages.items()}
    monkeypatch.setitem(files.MNIST_MD5, "mnist", published)
    ds = data.load("mnist", "test", root=tmp_path, download=True)
    assert len(ds) == 3 and sorted(opened) == sorted(pages)
    # a tampered labels file: the images (verified) stay, the labels are refused and removed
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    serve({**pages, files.MNIST_URLS["mnist"] + "t10k-labels-idx1-ubyte.gz": b"evil"})
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz does not match its published md5"):
        data.load("mnist", "test", root=tmp_path, download=True)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == ["t10k-images-idx3-ubyte.gz"]


def test_every_download_url_is_https_with_a_published_md5():
    from droplab.data import translation

    urls = [base for base in files.MNIST_URLS.values()] + [spec[5] for spec in files.CIFAR.values()]
    urls.append(translation.MULTI30K_URL)
    assert all(u.startswith("https://") for u in urls)
    digests = [d for table in files.MNIST_MD5.values() for d in table.values()]
    digests += [spec[6] for spec in files.CIFAR.values()] + list(translation.MULTI30K_MD5.values())
    assert all(len(d) == 32 and int(d, 16) >= 0 for d in digests)
    assert set(translation.MULTI30K_MD5) >= {"train.en", "train.de", "test_2016_flickr.en", "test_2016_flickr.de"}


# ---------------------------------------------------------------- archives: the "data" filter

def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def test_a_tar_member_named_dotdot_is_refused_and_nothing_is_extracted(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(tar_bytes({"cifar-10-batches-py/readme": b"ok", "../escape": b"outside"}))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ValueError) as info:
        extract_tar(archive, dest)
    assert one_line(info).startswith(f"refusing archive {archive}: ") and "escape" in str(info.value)
    assert not (tmp_path / "escape").exists() and list(dest.iterdir()) == []


def test_cifar_download_unpacks_only_a_verified_archive(tmp_path, serve, monkeypatch):
    spec = files.CIFAR["cifar10"]
    good = tar_bytes({"cifar-10-batches-py/test_batch": batch_bytes(5)})
    monkeypatch.setitem(files.CIFAR, "cifar10", spec[:6] + (md5(good),))
    serve({spec[5]: good})
    assert len(data.load("cifar10", "test", root=tmp_path / "ok", download=True)) == 5
    # an archive already in the folder is unpacked only if it is the published file
    root = tmp_path / "stale"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(tar_bytes({"../escape": b"x"}))
    with pytest.raises(ValueError, match="does not match its published md5.*delete it"):
        data.load("cifar10", "test", root=root, download=True)
    assert not (tmp_path / "escape").exists() and not (root / "cifar-10-batches-py").exists()


def test_verify_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    verify_file(tmp_path / "f", "sha256:" + hashlib.sha256(b"abc").hexdigest())
    with pytest.raises(ValueError, match="does not match its published sha256"):
        verify_file(tmp_path / "f", "sha256:" + "0" * 64)
