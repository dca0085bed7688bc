# rawkvm guest: mmio_loop
# Writes N bytes to the unbacked GPA 0x100000 (byte i = i & 0xFF), N from the parameter block, then halts.
# setup: param=1000
#
# Exits, in order:
#   N × MMIO write gpa 0x100000 len 1 data [i & 0xff] for i = 0, 1, ..., N-1 (N = 32-bit value at 0x0F00)
#   HLT

        .include "common.inc"
_start:
        # FS:0x0010 with FS = 0xFFFF is GPA 0x100000, just past the 1 MiB of RAM: no memory slot
        # backs it, so KVM turns each write into an MMIO exit for the VMM.
        mov     ax, HIGH_SEG
        mov     fs, ax
        FOR_EACH_INDEX mov fs:[HIGH_OFF], al
        HALT
