# rawkvm guest: compute_protected
# The loop of `compute` in 32-bit protected mode: adds N, N-1, ..., 1 (N from the parameter block, 100000 if it is 0) and prints the low 32 bits of the sum in hex on the debug console.
# setup: mode=protected
#
# Exits, in order:
#   9 × IO out port 0xe9 size 1 count 1 (the sum's low 32 bits as 8 hex digits, then "\n")
#   HLT
# N = 100000 prints 2A06B550.

        .include "common.inc"
        .code32
_start:
        SUM_LOOP 100000
        # Print EAX as 8 hex digits, most significant first.
        mov     edx, eax
        mov     ecx, 8
3:      rol     edx, 4
        mov     eax, edx
        and     eax, 0x0F
        mov     al, [hex_digits + eax]
        out     CONSOLE, al
        dec     ecx
        jnz     3b
        PUTC    '\n'
        HALT

hex_digits:
        .ascii  "0123456789ABCDEF"
