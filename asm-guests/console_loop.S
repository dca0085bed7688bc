# rawkvm guest: console_loop
# Writes N bytes to the debug console, N from the parameter block, cycling through 63 printable characters and a newline, then halts.
# setup: param=640
#
# Exits, in order:
#   N × IO out port 0xe9 size 1 count 1 (byte i = pattern[i % 64], pattern = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-\n"; N = 32-bit value at 0x0F00)
#   HLT

        .include "common.inc"
_start:
        # One console byte per iteration; EBX is the index (see FOR_EACH_INDEX in common.inc).
        FOR_EACH_INDEX call put_pattern_byte
        HALT

# put_pattern_byte: write pattern[EBX % 64] to the console.
put_pattern_byte:
        mov     si, bx
        and     si, 63
        mov     al, [pattern + si]
        out     CONSOLE, al
        ret

# 64 bytes, so `index & 63` picks one: 63 printable characters, then a newline.
pattern:
        .ascii  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-\n"
