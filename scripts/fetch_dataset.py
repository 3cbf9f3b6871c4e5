"""Download and unpack the MED-NODE archive (complete_mednode_dataset.zip).

Usage: fetch_dataset.py URL TMP_ZIP DEST_DIR
Exits non-zero (and leaves DEST_DIR untouched) when the network or archive fails.
"""
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

url, tmp_zip, dest = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
try:
    with urllib.request.urlopen(url, timeout=30) as r, open(tmp_zip, "wb") as f:
        shutil.copyfileobj(r, f)
    with tempfile.TemporaryDirectory() as unpack:
        zipfile.ZipFile(tmp_zip).extractall(unpack)
        root = next(p.parent for p in Path(unpack).rglob("melanoma") if p.is_dir())
        for cls in ("melanoma", "naevus"):
            target = dest / cls
            if target.is_symlink() or target.exists():
                shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(root / cls, target)
except Exception as e:  # noqa: BLE001 - any failure means "not available here"
    print(f"download failed: {e}", file=sys.stderr)
    sys.exit(1)
