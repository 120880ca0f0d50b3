import sys

from im2latex_encoder.cli import main

sys.exit(main())
