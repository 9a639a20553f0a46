"""`python -m scripts ...` is the same as `pilotlight ...`."""
import sys

from scripts.cli import main

sys.exit(main())
