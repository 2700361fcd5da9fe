"""Command line of the auth service: `python -m auth_service keys init|rotate [--dir DIR]`."""

import sys

from auth_service import keys

if __name__ == "__main__":
    if sys.argv[1:2] != ["keys"]:
        sys.exit("usage: python -m auth_service keys {init,rotate} [--dir DIR] [--drop-old]")
    sys.exit(keys.main(sys.argv[2:]))
