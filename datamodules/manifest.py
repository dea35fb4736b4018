"""Your own audio listed in a CSV: one row per clip with its file and label, and optionally its group
and split::

    path,label,group,split
    clips/a1.wav,yes,spk01,train
    /data/other/b7.flac,no,spk02,test

``path`` (the option) is the CSV, absolute or relative to the data root (default
``manifest.csv``); file paths in it are relative to the CSV's folder unless absolute.  The column
names are options (``path_column``, ``label_column``, ``group_column``, ``split_column``); the
group and split columns are used when the header has them.  Split values are ``train``, ``val``
(or ``validation``) and ``test``; with a split column no group may have clips in two splits.
Without one, the split is drawn as for a folder (:mod:`datamodules.user`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from audioforge.errors import DataError
from datamodules.base import AudioItem
from datamodules.splits import check_split_groups
from datamodules.user import UserAudioDataModule

SPLIT_NAMES = {"train": "train", "val": "val", "validation": "val", "test": "test"}


class ManifestDataModule(UserAudioDataModule):
    name = "manifest"
    default_path = "manifest.csv"

    def __init__(self, root: str | Path, path_column: str = "path", label_column: str = "label",
                 group_column: str = "group", split_column: str = "split", **kwargs):
        super().__init__(root, **kwargs)
        self.columns = {"path": path_column, "label": label_column, "group": group_column, "split": split_column}
        self.row_splits: list[str] | None = None

    def locate(self) -> Path:
        csv_path = super().locate()
        if not csv_path.is_file():
            raise DataError(f"manifest not found: {csv_path} (data.options.path: the CSV, absolute or relative to the "
                            "data root)")
        return csv_path

    def discover(self, csv_path: Path) -> list[AudioItem]:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            for key in ("path", "label"):
                if self.columns[key] not in header:
                    raise DataError(f"{csv_path}: no {key} column {self.columns[key]!r} (header: {', '.join(header)}); "
                                    f"set data.options.{key}_column to the column's name")
            has_group, has_split = self.columns["group"] in header, self.columns["split"] in header
            rows = []
            for line, row in enumerate(reader, start=2):
                row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                path, label = row[self.columns["path"]], row[self.columns["label"]]
                if not path or not label:
                    raise DataError(f"{csv_path}, line {line}: empty {'path' if not path else 'label'}")
                file = Path(path).expanduser()
                file = file if file.is_absolute() else csv_path.parent / file
                if not file.is_file():
                    raise DataError(f"{csv_path}, line {line}: audio file not found: {file}")
                group = row[self.columns["group"]] if has_group else ""
                if has_group and not group:
                    raise DataError(f"{csv_path}, line {line}: empty group")
                split = None
                if has_split:
                    split = SPLIT_NAMES.get(row[self.columns["split"]].lower())
                    if split is None:
                        raise DataError(f"{csv_path}, line {line}: unknown split {row[self.columns['split']]!r} "
                                        f"(train, val or validation, test)")
                rows.append((file, label, group or self.group_of(file, path), split))
        if not rows:
            raise DataError(f"{csv_path} lists no clips")
        index = self.set_classes(sorted({r[1] for r in rows}), str(csv_path))
        rows = [r for r in rows if r[1] in index]
        self.row_splits = [r[3] for r in rows] if has_split else None
        self.source = str(csv_path)
        return [AudioItem(path=file, label=index[label], group=group) for file, label, group, _ in rows]

    def make_splits(self, items: list[AudioItem]) -> dict[str, np.ndarray]:
        if self.row_splits is None:
            return super().make_splits(items)
        names = np.asarray(self.row_splits)
        splits = {name: np.flatnonzero(names == name) for name in ("train", "val", "test")}
        for name in ("train", "test"):
            if len(splits[name]) == 0:
                raise DataError(f"{self.source}: no row has split {name}")
        check_split_groups([i.group for i in items], splits, self.source)
        return splits
