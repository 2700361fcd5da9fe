"""Command line of the board service.

python -m board_service db upgrade|downgrade|current|revision   # uses BOARD_DATABASE_URL
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] != ["db"]:
        sys.exit(__doc__)
    from board_service.config import BoardConfig
    from board_service.migrations import HISTORY
    from shared import migrations

    sys.exit(migrations.main(sys.argv[2:], HISTORY, lambda: BoardConfig.from_env().database_url))
