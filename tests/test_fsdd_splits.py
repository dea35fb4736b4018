from collections import Counter

import pytest
import torch

from datamodules.fsdd import FSDDDataModule
from datamodules.loader import TensorBatchLoader


@pytest.fixture(scope="module")
def fsdd(data_root):
    dm = FSDDDataModule(data_root, forget_speakers=["george"], seed=0, download=False)
    dm.setup()
    return dm


def test_paper_split_sizes(fsdd):
    sizes = {k: fsdd.split_size(k) for k in ("retain_train", "val", "test", "forget", "full_train")}
    assert sizes == {"retain_train": 2025, "val": 225, "test": 250, "forget": 500, "full_train": 2525}
    assert fsdd.x.shape == (3000, 1, 20, 20)


def test_splits_are_disjoint_and_forget_speaker_is_only_in_forget(fsdd):
    sets = {k: set(fsdd.splits[k].tolist()) for k in ("retain_train", "val", "test", "forget")}
    names = list(sets)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not sets[a] & sets[b], (a, b)
    assert set().union(*sets.values()) == set(range(3000))
    assert set(fsdd.splits["full_train"].tolist()) == sets["retain_train"] | sets["forget"]
    for split in ("retain_train", "val", "test"):
        assert "george" not in fsdd.groups(split)
    assert set(fsdd.groups("forget")) == {"george"}


def test_stratified_by_digit(fsdd):
    assert Counter(fsdd.tensors("test")[1].tolist()) == {d: 25 for d in range(10)}
    val_counts = Counter(fsdd.tensors("val")[1].tolist())
    assert max(val_counts.values()) - min(val_counts.values()) <= 1


def test_deterministic_per_seed(data_root, fsdd):
    same = FSDDDataModule(data_root, seed=0, download=False)
    same.setup()
    other = FSDDDataModule(data_root, seed=1, download=False)
    other.setup()
    assert torch.equal(same.splits["test"], fsdd.splits["test"])
    assert not torch.equal(other.splits["test"], fsdd.splits["test"])


def test_two_forget_speakers(data_root):
    dm = FSDDDataModule(data_root, forget_speakers=["george", "theo"], download=False)
    dm.setup()
    assert dm.split_size("forget") == 1000
    assert dm.split_size("retain_train") + dm.split_size("val") + dm.split_size("test") == 2000


def test_loaders(fsdd):
    fsdd.batch_size = 16
    fsdd.train_split = "retain_train"
    train = fsdd.train_dataloader()
    batches = list(train)
    assert len(batches) == len(train) == 127
    assert batches[0][0].shape == (16, 1, 20, 20) and batches[-1][0].shape[0] == 2025 - 126 * 16
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == sorted(fsdd.tensors("retain_train")[1].tolist())
    second = list(train)  # a new epoch shuffles differently
    assert not torch.equal(batches[0][1], second[0][1])
    for split in ("full_train", "forget", "val", "test"):
        loader = fsdd.loader(split)
        assert sum(len(y) for _, y in loader) == fsdd.split_size(split)


def test_loader_shards_cover_everything_once_per_rank():
    x, y = torch.arange(10).float()[:, None], torch.arange(10)
    shards = [list(TensorBatchLoader(x, y, 2, shuffle=True, seed=3, rank=r, world_size=3)) for r in range(3)]
    lengths = {len(s) for s in shards}
    assert lengths == {2}  # 10 samples over 3 ranks: padded to 4 each, same batch count everywhere
    seen = torch.cat([b for s in shards for _, b in s])
    assert set(seen.tolist()) == set(range(10)) and len(seen) == 12


def test_full_batches_only_make_rank_shards_exactly_the_single_process_batches():
    """drop_last: every rank runs n // (batch x world) batches, and batch k of the ranks together is
    batch k of one process, whatever n (here odd, where a rank's shard needs padding)."""
    x = torch.arange(303).float().view(-1, 1)
    single = [b[0].view(-1).tolist() for b in TensorBatchLoader(x, x, 16, shuffle=True, seed=4, drop_last=True)]
    ranks = [[b[0].view(-1).tolist() for b in TensorBatchLoader(x, x, 8, shuffle=True, seed=4, drop_last=True, rank=r,
                                                               world_size=2)] for r in range(2)]
    assert len(single) == len(ranks[0]) == len(ranks[1]) == 303 // 16
    for k, batch in enumerate(single):
        assert sorted(batch) == sorted(ranks[0][k] + ranks[1][k])


def test_forget_holdout_keeps_same_speaker_clips_out_of_every_training_split(data_root):
    dm = FSDDDataModule(data_root, forget_speakers=["george"], forget_holdout=0.2, download=False)
    dm.setup()
    held, forget = set(dm.splits["forget_holdout"].tolist()), set(dm.splits["forget"].tolist())
    assert (len(held), len(forget)) == (100, 400) and not held & forget
    assert set(dm.groups("forget_holdout")) == {"george"}
    assert not held & set(dm.splits["full_train"].tolist())
    assert sorted(dm.y[dm.splits["forget_holdout"]].tolist()) == sorted(list(range(10)) * 10)  # stratified
    # the retained splits are the paper's, unchanged by the hold-out
    assert {k: dm.split_size(k) for k in ("retain_train", "val", "test")} == {"retain_train": 2025, "val": 225,
                                                                              "test": 250}


def test_a_sealed_split_cannot_be_read_but_its_size_is_known(data_root):
    from audioforge.errors import DataError

    dm = FSDDDataModule(data_root, forget_speakers=["george"], download=False, sealed=("test",))
    dm.setup()
    assert dm.split_size("test") == 250 and dm.tensors("val")[0].shape[0] == 225
    with pytest.raises(DataError, match="split 'test' of fsdd is sealed"):
        dm.tensors("test")
    with pytest.raises(DataError, match="sealed"):
        dm.test_dataloader()


def test_the_speaker_protocol_never_puts_one_speaker_in_two_splits(data_root):
    dm = FSDDDataModule(data_root, forget_speakers=[], test_speakers=["george"], val_speakers=["jackson"],
                        download=False)
    dm.setup()
    groups = {split: set(dm.groups(split)) for split in ("full_train", "val", "test")}
    assert groups["test"] == {"george"} and groups["val"] == {"jackson"}
    assert groups["full_train"] == {"lucas", "nicolas", "theo", "yweweler"}
    assert (dm.split_size("full_train"), dm.split_size("val"), dm.split_size("test")) == (2000, 500, 500)


@pytest.mark.parametrize("options, message", [
    ({"test_speakers": ["george"]}, "test_speakers and val_speakers go together"),
    ({"test_speakers": ["george"], "val_speakers": ["george"]}, "speaker 'george' is named for two splits"),
    ({"test_speakers": ["george"], "val_speakers": ["bob"]}, "unknown test or validation speaker 'bob'"),
    ({"test_speakers": ["george", "jackson", "lucas"], "val_speakers": ["nicolas", "theo", "yweweler"]},
     "leaves no training speaker"),
])
def test_bad_speaker_protocols(data_root, options, message):
    from audioforge.errors import ConfigError, DataError

    with pytest.raises((ConfigError, DataError), match=message):
        FSDDDataModule(data_root, forget_speakers=[], download=False, **options).setup()
