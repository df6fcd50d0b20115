"""Entry-point helper for tools/: bad input ends with one clear line instead of a traceback."""
from __future__ import annotations

import os
import sys
from typing import Callable

from backbones.checkpoint_io import UnsafeCheckpointError


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main``; missing files, refused or unreadable checkpoints and invalid data print ``error: ...`` and
    exit with status 2. Set ``MOBILEVISION_DEBUG=1`` to see the traceback."""
    try:
        main()
    except (FileNotFoundError, UnsafeCheckpointError, ValueError, KeyError, RuntimeError) as err:
        if os.environ.get('MOBILEVISION_DEBUG'):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        sys.exit(2)
