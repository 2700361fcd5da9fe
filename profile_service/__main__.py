"""Command line of the profile service.

python -m profile_service db upgrade|downgrade|current|revision   # uses PROFILE_DATABASE_URL
"""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] != ["db"]:
        sys.exit(__doc__)
    from profile_service.config import ProfileConfig
    from profile_service.migrations import HISTORY
    from shared import migrations

    sys.exit(migrations.main(sys.argv[2:], HISTORY, lambda: ProfileConfig.from_env().database_url))
