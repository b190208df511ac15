"""Bring a student's copy of the notebooks up to date without touching their work.

    python hub/notebook_sync.py SOURCE DEST        # what binder/start does on every start

Called on every spawn (hub/jupyterhub_config.py) with the kit's ``notebooks/`` as SOURCE and
the student's ``notebooks/`` as DEST.  A manifest in DEST (``.mmkit-sync.json``) keeps, per
file, the hash of the version last copied in.  For each file of SOURCE:

* not in DEST: copied (so a student who deletes a notebook gets the current one back);
* in DEST and unchanged since it was copied (its hash is the manifest's): replaced by the new
  version when SOURCE changed;
* in DEST and edited by the student: **never overwritten**; when SOURCE has a version the
  student has not been offered yet, it is put beside theirs as ``<name>.updated.ipynb``
  and listed in ``UPDATES.md`` in DEST;
* in DEST from before the manifest existed: recorded as copied if identical to SOURCE, else
  treated as edited.

Each write goes to a temporary file first and is renamed into place.
"""

import hashlib
import json
import os
import pathlib
import shutil
import sys
import time

MANIFEST = ".mmkit-sync.json"
NOTICE = "UPDATES.md"
SKIP = {".ipynb_checkpoints", "__pycache__"}


def digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def updated_name(rel):
    """``07-history-lab.ipynb`` -> ``07-history-lab.updated.ipynb``."""
    rel = pathlib.PurePosixPath(rel)
    return str(rel.with_name(f"{rel.stem}.updated{rel.suffix}"))


def _files(source):
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_file() and not SKIP & set(rel.parts) and ".updated." not in path.name:
            yield rel.as_posix(), path


def _copy(src, dest):
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.mmkit-sync")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def sync(source, dest, now=None):
    """Update ``dest`` from ``source`` as the module docstring says.

    Returns ``{"copied": [...], "updated": [...], "offered": [...], "kept": [...]}`` (relative
    paths): new files copied, unchanged copies replaced, new versions put beside an edited
    file (as ``<name>.updated.<ext>``), edited files left alone with nothing new to offer."""
    source, dest = pathlib.Path(source), pathlib.Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    mpath = dest / MANIFEST
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError):
        manifest = {}
    files = manifest.setdefault("files", {})
    done = {"copied": [], "updated": [], "offered": [], "kept": []}
    for rel, src in _files(source):
        new = digest(src)
        mine = dest / rel
        entry = files.get(rel, {})
        if not mine.exists():
            _copy(src, mine)
            files[rel] = {"copied": new}
            done["copied"].append(rel)
            continue
        have = digest(mine)
        if have == new:                                # already the current version
            files[rel] = {"copied": new}
            continue
        if entry.get("copied") == have:                # the student did not touch it
            _copy(src, mine)
            files[rel] = {"copied": new}
            done["updated"].append(rel)
            continue
        # edited by the student (or there before the manifest, and different): offer the
        # source's version only if it is not the one they started from nor one already offered
        if new != entry.get("copied") and new != entry.get("offered"):
            _copy(src, dest / updated_name(rel))
            entry = dict(entry, offered=new)
            files[rel] = entry
            done["offered"].append(rel)
        else:
            done["kept"].append(rel)
        files.setdefault(rel, entry)
    if done["offered"]:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(now))
        lines = [f"- `{updated_name(r)}`: a newer version of `{r}`, which you have edited "
                 "(yours is unchanged; compare them and copy over what you need)" for r in done["offered"]]
        old = (dest / NOTICE).read_text() if (dest / NOTICE).exists() else \
            "# Notebook updates\n\nYour lecturer updated notebooks you had already changed. Your files were not touched.\n"
        (dest / NOTICE).write_text(old.rstrip("\n") + f"\n\n## {stamp}\n\n" + "\n".join(lines) + "\n")
    tmp = mpath.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, mpath)
    return done


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    done = sync(*argv)
    for what, rels in done.items():
        if rels and what != "kept":
            print(f"mmkit notebooks {what}: {', '.join(rels)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
