"""Archives extracted by several graders or threads at once never corrupt each other.

A class zip (Moodle's "download all submissions") is extracted by every grader that is given it:
two graders into their own output folders, or several threads (or processes) into one folder
(``harness check`` runs, a library caller). Each must get the whole class, byte for byte, and no
error: an extraction is built aside and renamed into place, so a reader never sees half of one
and two extractors never delete or overwrite each other's files.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

from conftest import FIXTURES

from harness.ingest.paths import discover

CLASS = FIXTURES / "tiny_class"
PADDING_BYTES = 4 * 2**20  # a large member keeps each extraction busy long enough for the others to meet it
EXTRACTORS = 6
ROUNDS = 4


def _class_zip(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """Moodle's layout: one folder per student, each with its module (and a big data file)."""
    contents = {}
    for module in sorted(CLASS.glob("*.py")):
        folder = f"{module.stem.title()} Martin_{1000 + len(contents)}_assignsubmission_file_"
        contents[f"{folder}/{module.name}"] = module.read_bytes()
        contents[f"{folder}/donnees.bin"] = os.urandom(PADDING_BYTES)
    archive = tmp_path / "classe.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as handle:
        for name, data in contents.items():
            handle.writestr(name, data)
    return archive, contents


def _extracted(paths: list[Path]) -> dict[str, bytes]:
    """{'<student's folder>/<file>': bytes} of what discover() found, keyed as the zip's members."""
    return {
        f"{folder.name}/{file.name}": file.read_bytes()
        for folder in paths
        for file in sorted(folder.iterdir())
        if file.is_file()
    }


def test_threads_extracting_one_archive_into_one_folder_each_get_it_whole(tmp_path):
    archive, contents = _class_zip(tmp_path)
    for round_ in range(ROUNDS):
        shared = tmp_path / f"archives-{round_}"
        start = threading.Barrier(EXTRACTORS)
        outcomes: list = [None] * EXTRACTORS

        def extract(
            index: int, shared: Path = shared, start: threading.Barrier = start, outcomes: list = outcomes
        ) -> None:
            start.wait()
            try:
                paths, ignored = discover([archive], extract_to=shared)
                outcomes[index] = (_extracted(paths), [i.reason for i in ignored])
            except Exception as error:  # the failure to report, not to hide in a thread
                outcomes[index] = error

        threads = [threading.Thread(target=extract, args=(i,)) for i in range(EXTRACTORS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for outcome in outcomes:
            assert not isinstance(outcome, Exception), f"round {round_}: {outcome!r}"
            found, ignored = outcome
            assert ignored == [], f"round {round_}: {ignored}"
            assert set(found) == set(contents), f"round {round_}: {sorted(found)}"
            assert found == contents, f"round {round_}: a file differs from the archive's"


EXTRACT = """
import json, sys, time
from pathlib import Path
from harness.ingest.paths import discover

go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.01)
paths, ignored = discover([Path(sys.argv[1])], extract_to=Path(sys.argv[2]))
files = {f"{p.name}/{f.name}": f.stat().st_size for p in paths for f in sorted(p.iterdir()) if f.is_file()}
print(json.dumps({"files": files, "ignored": [i.reason for i in ignored]}))
"""


def _graders(archive: Path, folders: list[Path], go: Path) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", EXTRACT, str(archive), str(folder), str(go)], stdout=subprocess.PIPE, text=True
        )
        for folder in folders
    ]


def test_graders_extracting_one_class_zip_at_once_each_get_it_whole(tmp_path):
    """Two graders into their own output folders, and three processes into one shared folder."""
    import json  # only this test reads the graders' answers

    archive, contents = _class_zip(tmp_path)
    expected = {name: len(data) for name, data in contents.items()}
    shared = tmp_path / "shared-archives"
    folders = [tmp_path / "out-a" / ".work" / "archives", tmp_path / "out-b" / ".work" / "archives"] + [shared] * 3
    go = tmp_path / "go"
    graders = _graders(archive, folders, go)
    time.sleep(1.0)  # every interpreter started and waiting
    go.touch()
    for grader, folder in zip(graders, folders):
        output, _ = grader.communicate(timeout=120)
        assert grader.returncode == 0, f"{folder}: exit {grader.returncode}"
        answer = json.loads(output)
        assert answer == {"files": expected, "ignored": []}, folder
    for folder in {*folders}:  # what stays on disk is whole too
        paths, _ = discover([archive], extract_to=folder)
        assert _extracted(paths) == contents
