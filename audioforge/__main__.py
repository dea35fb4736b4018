import sys

from audioforge.cli import main

sys.exit(main())
