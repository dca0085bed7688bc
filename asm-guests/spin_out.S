# rawkvm guest: spin_out
# Loops forever doing one-byte OUTs to the unused port 0x510 (byte i = i & 0xFF): exits all the time, never halts.
#
# Exits, in order:
#   endless IO out port 0x510 size 1 count 1 (byte i & 0xff for i = 0, 1, 2, ...)

        .include "common.inc"
_start:
        mov     dx, SPARE_PORT
        xor     ebx, ebx
forever:
        # One exit per iteration: the VMM always has a chance to notice a deadline here.
        mov     al, bl
        out     dx, al
        inc     ebx
        jmp     forever
