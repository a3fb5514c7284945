"""`python -m tvmc_multimodule ...` is `tvmc ...`."""
import sys

from tvmc_multimodule.cli.driver import main

if __name__ == "__main__":
    sys.exit(main())
