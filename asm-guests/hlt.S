# rawkvm guest: hlt
# Halts at once: the smallest possible run.
#
# Exits, in order:
#   HLT

        .include "common.inc"
_start:
        HALT
