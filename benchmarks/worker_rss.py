"""The web worker of the ``rss`` section: the hello app, with or without the extension.

``python worker_rss.py bare|ext LOCK`` serves 50 requests, then prints its VmRSS (KiB), how
many modules it imported, and which of the CLI-only modules (``footprint.CLI_ONLY``, given after
LOCK) are among them. It imports only what a worker does: no benchmark helpers (they import
subprocess) and not ``apps.py`` (which imports the extension in every variant).
"""

from __future__ import annotations

import os
import sys


def main(variant: str, lock: str, cli_only: list[str]) -> None:
    # The optional metrics extra is kept out: an app that installs it imports it anyway.
    sys.modules["prometheus_client"] = None  # type: ignore[assignment]
    from flask import Flask
    from werkzeug.test import EnvironBuilder

    app = Flask("worker", instance_path=os.path.dirname(lock))

    @app.get("/")
    def hello() -> str:
        return "Hello, World!"

    if variant == "ext":
        from flask_maintenance import Maintenance

        app.config["MAINTENANCE_LOCK_FILE"] = lock
        Maintenance(app)
    environ = EnvironBuilder(path="/").get_environ()
    for _ in range(50):
        for _chunk in app.wsgi_app(environ.copy(), lambda status, headers, exc_info=None: None):
            pass
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    print(kib, len(sys.modules), *[name for name in cli_only if name in sys.modules])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
