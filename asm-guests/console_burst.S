# rawkvm guest: console_burst
# Writes N bytes to the debug console as fast as a guest can: one `rep outsb` per 64 bytes of a pattern, N from the parameter block, then halts.
# setup: param=640
#
# Exits, in order:
#   N × IO out port 0xe9 size 1 count 1 (byte i = pattern[i % 64], pattern = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-\n"; N = 32-bit value at 0x0F00; this host gives one exit per byte)
#   HLT
# The same bytes as console_loop, with a few instructions per 64 bytes instead of ten per
# byte: on a host that emulates every instruction, what is left is the cost of the output
# itself, which is what `rawkvm bench console` compares with and without coalescing.

        .include "common.inc"
_start:
        cld
        mov     dx, CONSOLE
        mov     ebx, dword ptr [PARAM]

        # Whole patterns: EBX counts the bytes still to write.
1:      cmp     ebx, 64
        jb      2f
        mov     si, offset pattern
        mov     cx, 64
        rep outsb
        sub     ebx, 64
        jmp     1b

        # The rest, fewer than 64 bytes (CX = 0 writes nothing).
2:      mov     si, offset pattern
        mov     cx, bx
        rep outsb
        HALT

# 64 bytes: 63 printable characters, then a newline (the pattern of console_loop).
pattern:
        .ascii  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-\n"
