"""Run a server command with the environment this project gives its MLflow servers.

    python -m registry.serverenv HOME COMMAND...

Compose's mlflow service starts `mlflow server` this way: the settings of `localserver.SERVER_ENV`
unless the environment sets them, and MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY from the environment or,
when it is empty, from HOME/webhook.key (made once, mode 600), so that webhook secrets stay readable
after a restart. Then it execs COMMAND (which becomes the process: signals reach it directly).
Standard library only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from registry.localserver import KEY_VARIABLE, server_environment


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: python -m registry.serverenv HOME COMMAND...")
    home, command = Path(argv[0]), argv[1:]
    environment = {key: value for key, value in os.environ.items() if value or key != KEY_VARIABLE}
    os.environ.clear()
    os.environ.update({**server_environment(home), **environment})
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
