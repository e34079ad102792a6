"""User errors: one clear line (what is wrong and how to fix it), exit status 1, no traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

logger = logging.getLogger("tutor")


class UserError(Exception):
    """A problem the user can fix (bad input, missing file, wrong hardware); never a bug."""


def run_cli(main: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        main()
    except UserError as err:
        logger.error("%s", err)
        sys.exit(1)
    except KeyboardInterrupt:
        logger.error("interrupted: finished work is kept; run the same command again to continue")
        sys.exit(130)
