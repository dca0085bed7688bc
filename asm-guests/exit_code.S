# rawkvm guest: exit_code
# Prints "bye" on the debug console, then writes the parameter's low byte to the exit device (port 0xf4): status 0 for 0, else status 8.
# setup: param=0
#
# Exits, in order:
#   3 × IO out port 0xe9 size 1 count 1 ("bye")
#   IO out port 0xf4 size 1 count 1 (the parameter's low byte; the run ends here)
# Nothing after the write to port 0xf4 runs: the HLT below is never reached.

        .include "common.inc"
_start:
        PUTC    'b'
        PUTC    'y'
        PUTC    'e'
        mov     al, byte ptr [PARAM]
        out     EXIT_PORT, al
        HALT
