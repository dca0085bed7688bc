# rawkvm guest: compute_real
# The loop of `compute` in real mode: adds N, N-1, ..., 1 (N from the parameter block, 100000 if it is 0) and prints the low 32 bits of the sum in hex on the debug console.
#
# Exits, in order:
#   9 × IO out port 0xe9 size 1 count 1 (the sum's low 32 bits as 8 hex digits, then "\n")
#   HLT
# N = 100000 prints 2A06B550. Every instruction of the loop is emulated on PVM; `rawkvm bench
# modes` times it against the same loop in the other modes.

        .include "common.inc"
_start:
        SUM_LOOP 100000
        mov     cx, 8
        call    print_hex
        PUTC    '\n'
        HALT

        .include "lib.inc"
