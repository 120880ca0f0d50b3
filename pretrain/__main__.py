"""`python -m pretrain ...` is `im2latex-encoder pretrain ...`."""

import sys

from im2latex_encoder.cli import main

sys.exit(main(["pretrain", *sys.argv[1:]]))
