"""Tests for scalelaw.corpus: byte and token-file corpora, deterministic batches."""

from __future__ import annotations

import os
import sysconfig

import numpy as np
import pytest

from scalelaw.corpus import SEPARATOR, Corpus, DataConfig, _split_key, _stdlib_files, load_corpus
from scalelaw.errors import ConfigError


@pytest.fixture(scope="module")
def stdlib() -> Corpus:
    return load_corpus({"source": "stdlib"})


def test_stdlib_corpus_loads(stdlib: Corpus) -> None:
    assert stdlib.vocab == 256
    assert stdlib.train.dtype == np.uint8 and stdlib.val.dtype == np.uint8
    assert len(stdlib.train) > 1_000_000 and len(stdlib.val) > 10_000
    assert 0.003 < len(stdlib.val) / len(stdlib.train) < 0.1
    assert b"def " in stdlib.train[:100_000].tobytes()
    assert not stdlib.train.flags.writeable


def test_stdlib_excludes_site_packages_and_tests() -> None:
    root = sysconfig.get_paths()["stdlib"]
    files = _stdlib_files(root, include_tests=False)
    parts = {p for f in files for p in os.path.relpath(f, root).split(os.sep)[:-1]}
    assert not parts & {"site-packages", "test", "tests", "idle_test", "__pycache__"}
    assert all(f.endswith(".py") for f in files)
    assert len(_stdlib_files(root, include_tests=True)) > len(files)


def test_split_is_by_file_and_deterministic(stdlib: Corpus) -> None:
    root = sysconfig.get_paths()["stdlib"]
    files = _stdlib_files(root, include_tests=False)
    contents = [open(f, "rb").read() for f in files]
    keys = [_split_key(f, root) for f in files]
    val_files = [c for k, c in zip(keys, contents, strict=True) if c and k < 0.02]
    val = bytes(stdlib.val)
    assert val == bytes([SEPARATOR]).join(val_files)  # whole files, in sorted order
    train = bytes(stdlib.train)
    for content in val_files[:3]:
        assert content not in train
    again = load_corpus(DataConfig("stdlib", seed=5))  # data seed does not change the data
    assert np.array_equal(again.val, stdlib.val) and np.array_equal(again.train, stdlib.train)


def test_text_source_split_by_file(tmp_path) -> None:
    files = {}
    for i in range(60):
        files[f"doc{i:02d}.txt"] = f"document {i} ".encode() * 20
        (tmp_path / f"doc{i:02d}.txt").write_bytes(files[f"doc{i:02d}.txt"])
    corpus = load_corpus({"source": "text", "paths": [str(tmp_path / "*.txt")],
                          "val_fraction": 0.1})
    sep = bytes([SEPARATOR])
    val_docs = bytes(corpus.val).split(sep)
    train_docs = bytes(corpus.train).split(sep)
    assert 1 <= len(val_docs) < 30
    # a partition of whole files, each split in sorted file order
    assert sorted(val_docs + train_docs) == sorted(files.values())
    assert train_docs == [d for d in files.values() if d not in val_docs]
    with pytest.raises(ConfigError, match=r"data\.paths\[0\]: pattern matches no files"):
        load_corpus({"source": "text", "paths": [str(tmp_path / "*.md")]})


def test_single_text_file_holds_out_its_tail(tmp_path) -> None:
    path = tmp_path / "one.txt"
    path.write_bytes(bytes(range(32, 127)) * 10)
    corpus = load_corpus({"source": "text", "paths": [str(path)]})
    assert bytes(corpus.train) + bytes(corpus.val) == path.read_bytes()
    assert len(corpus.val) == round(950 * 0.02)


def test_batches_are_a_pure_function_of_seed_and_step(stdlib: Corpus) -> None:
    a = stdlib.train_batch(step=7, batch_size=4, context=32, seed=0)
    assert a.shape == (4, 33) and a.dtype == np.int32
    assert np.array_equal(a, stdlib.train_batch(7, 4, 32, seed=0))
    assert not np.array_equal(a, stdlib.train_batch(8, 4, 32, seed=0))
    assert not np.array_equal(a, stdlib.train_batch(7, 4, 32, seed=1))
    many = stdlib.train_batches(5, 3, batch_size=4, context=32, seed=0)
    assert many.shape == (3, 4, 33) and np.array_equal(many[2], a)
    # a fresh corpus object (as after a restart) gives the same batch
    fresh = Corpus(stdlib.train.copy(), stdlib.val.copy(), 256)
    assert np.array_equal(fresh.train_batch(7, 4, 32, seed=0), a)


def test_windows_are_contiguous() -> None:
    corpus = Corpus(np.arange(1000, dtype=np.uint16), np.arange(100, dtype=np.uint16), 1000)
    batch = corpus.train_batch(0, 8, 16, seed=3)
    assert (np.diff(batch, axis=1) == 1).all()
    assert batch.max() < 1000


def test_eval_set_is_fixed(stdlib: Corpus) -> None:
    ev = stdlib.eval_batches(eval_tokens=5000, batch_size=4, context=64)
    assert ev.shape == (20, 4, 65) and ev.dtype == np.int32
    assert np.array_equal(ev, stdlib.eval_batches(5000, 4, 64))
    assert ev.max() < 256
    first = ev.reshape(-1, 65)[0]
    assert np.array_equal(first, stdlib.val[:65])  # windows start at offset 0


def test_batch_arguments_are_checked(stdlib: Corpus) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        stdlib.train_batch(0, 0, 32, seed=0)
    tiny = Corpus(np.arange(10, dtype=np.uint8), np.arange(10, dtype=np.uint8), 256)
    with pytest.raises(ValueError, match="context"):
        tiny.train_batch(0, 2, 16, seed=0)


def test_token_file_round_trip(tmp_path) -> None:
    tokens = (np.arange(10_000) * 7 % 50_000).astype(np.uint16)
    path = tmp_path / "train.bin"
    tokens.tofile(path)
    corpus = load_corpus({"source": "tokens", "path": str(path), "vocab": 50_000,
                          "val_fraction": 0.1})
    assert corpus.vocab == 50_000
    assert isinstance(corpus.train, np.memmap)
    assert np.array_equal(np.concatenate([corpus.train, corpus.val]), tokens)
    assert len(corpus.val) == 1000
    batch = corpus.train_batch(3, 2, 16, seed=0)
    start = np.flatnonzero(tokens == batch[0, 0])[0]
    assert np.array_equal(batch[0], tokens[start : start + 17])


def test_token_file_with_separate_validation(tmp_path) -> None:
    np.arange(1000, dtype=np.uint32).tofile(tmp_path / "train.bin")
    np.arange(100, dtype=np.uint32).tofile(tmp_path / "val.bin")
    corpus = load_corpus({"source": "tokens", "path": str(tmp_path / "train.bin"),
                          "val_path": str(tmp_path / "val.bin"), "vocab": 1000,
                          "dtype": "uint32"})
    assert len(corpus.train) == 1000 and np.array_equal(corpus.val, np.arange(100))


def test_out_of_vocab_tokens_are_rejected_naming_the_file(tmp_path) -> None:
    path = tmp_path / "bad.bin"
    np.array([1, 2, 3, 300, 4], dtype=np.uint16).tofile(path)
    with pytest.raises(ConfigError, match=r"data\.path: .*bad\.bin contains token id 300 >= "
                                          r"vocab 256 at position 3"):
        load_corpus({"source": "tokens", "path": str(path), "vocab": 256})


def test_token_file_errors(tmp_path) -> None:
    odd = tmp_path / "odd.bin"
    odd.write_bytes(b"\x01\x00\x02")
    with pytest.raises(ConfigError, match=r"data\.path: .*odd\.bin has 3 bytes"):
        load_corpus({"source": "tokens", "path": str(odd), "vocab": 256})
    with pytest.raises(ConfigError, match=r"data\.path: no such file"):
        load_corpus({"source": "tokens", "path": str(tmp_path / "missing.bin"), "vocab": 9})


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"source": "web"}, "data.source"),
        ({"source": "tokens", "path": "x.bin"}, "data.vocab"),
        ({"source": "tokens", "path": "x.bin", "vocab": 70_000}, "data.vocab"),
        ({"source": "stdlib", "paths": ["a"]}, "data.paths"),
        ({"source": "text", "paths": []}, "data.paths"),
        ({"source": "stdlib", "val_fraction": 1.5}, "data.val_fraction"),
        ({"source": "stdlib", "seed": -1}, "data.seed"),
        ({"source": "stdlib", "shuffle": True}, "data.shuffle"),
    ],
)
def test_bad_data_configs(config: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_corpus(config)
    assert str(info.value).startswith(field + ":")
