# rawkvm guest: protected_hello
# Prints "Hello from protected mode!" and a newline on the debug console, in 32-bit protected mode (flat segments, no paging) set up by the host.
# setup: mode=protected
#
# Exits, in order:
#   27 × IO out port 0xe9 size 1 count 1 (the bytes of "Hello from protected mode!\n")
#   HLT
# The host enters at EIP 0x1000 with CS = 0x08 (32-bit code, base 0, limit 4 GiB) and
# DS = ES = FS = GS = SS = 0x10, CR0 = PE|MP|ET|NE, no IDT: any exception is a triple fault.

        .include "common.inc"
        .code32
_start:
        mov     esi, offset message
1:      mov     al, [esi]
        test    al, al
        jz      2f
        out     CONSOLE, al
        inc     esi
        jmp     1b
2:      HALT

message:
        .asciz  "Hello from protected mode!\n"
