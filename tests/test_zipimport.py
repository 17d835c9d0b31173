"""The package imported from a zip archive (a zipapp, a zipped pex, a ``PYTHONPATH`` entry that is
a ``.zip``): its page and texts come from inside the archive, as from an installed wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import flask_maintenance
from flask_maintenance.texts import texts

PACKAGE = Path(flask_maintenance.__file__).parent

APP = """
import json, sys
from flask import Flask
import flask_maintenance
from flask_maintenance import Maintenance

app = Flask(__name__)
app.config["MAINTENANCE_LOCK_FILE"] = sys.argv[1]
Maintenance(app)
page = app.test_client().get("/", headers={"Accept-Language": "de"})
print(json.dumps({
    "module": flask_maintenance.__file__,
    "status": page.status_code,
    "language": page.headers.get("Content-Language"),
    "body": page.get_data(as_text=True),
}))
"""


def test_the_maintenance_page_is_served_from_a_zip_archive(tmp_path: Path) -> None:
    archive = tmp_path / "app.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(PACKAGE.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, Path("flask_maintenance") / path.relative_to(PACKAGE))
    lock_file = tmp_path / "maintenance.lock"
    lock_file.write_text("{}\n")
    done = subprocess.run(
        [sys.executable, "-c", APP, str(lock_file)],
        cwd=tmp_path,  # not a checkout, whose package would come first
        env={"PYTHONPATH": str(archive), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    served = json.loads(done.stdout)
    assert served["module"].startswith(str(archive))  # not the installed copy
    assert (served["status"], served["language"]) == (503, "de")
    assert f"<title>{texts('de').full_title}" in served["body"]
