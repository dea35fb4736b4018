"""Your own audio, one subfolder per class: ``<path>/<class>/**/*.wav`` (any nesting below the class
folder; WAV, FLAC, OGG, AIFF in any sample format, rate and channel count).

``path`` is the folder holding the class folders, absolute or relative to the data root (default:
the data root itself, so ``--data /my/digits --dataset folder`` works).  Hidden files and folders
are skipped, and so are files that are not audio (a README beside the clips); an audio file that
will not decode stops the run naming it.  Groups and splits: :mod:`datamodules.user`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from audioforge.errors import DataError
from datamodules.base import AUDIO_SUFFIXES, AudioItem, describe_files
from datamodules.user import UserAudioDataModule

log = logging.getLogger(__name__)


class FolderDataModule(UserAudioDataModule):
    name = "folder"

    def locate(self) -> Path:
        folder = super().locate()
        if not folder.is_dir():
            raise DataError(f"folder dataset not found: {folder} is not a folder (data.options.path, relative to the "
                            "data root, or --data: the folder holding one subfolder per class)")
        return folder

    def discover(self, folder: Path) -> list[AudioItem]:
        class_dirs = {p.name: p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")}
        loose = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES]
        if loose:
            raise DataError(f"{folder} holds {len(loose)} audio file(s) outside any class folder: "
                            f"{describe_files(loose)}; put each clip in its class's subfolder")
        if not class_dirs:
            raise DataError(f"{folder} holds no class folders (expected <class>/<clips>)")
        index = self.set_classes(list(class_dirs), str(folder))
        items, skipped = [], 0
        for name in self.class_names:
            clips = []
            for p in sorted(class_dirs[name].rglob("*")):
                relative = p.relative_to(folder)
                if any(part.startswith(".") for part in relative.parts) or not p.is_file():
                    continue
                if p.suffix.lower() not in AUDIO_SUFFIXES:
                    skipped += 1
                    continue
                clips.append(AudioItem(path=p, label=index[name], group=self.group_of(p, relative.as_posix())))
            if not clips:
                raise DataError(f"class folder {class_dirs[name]} holds no audio files "
                                f"({', '.join(sorted(AUDIO_SUFFIXES))}); remove it or add clips")
            items.extend(clips)
        if skipped:
            log.info("%s: skipped %d file(s) that are not audio", folder, skipped)
        return items
