# rawkvm guest: doorbell
# Rings two doorbells N times each (param): one-byte OUTs to port 0x512, then one-byte writes to the unbacked GPA 0x100000 (byte i = i & 0xFF), then halts.
# setup: param=1000
#
# Exits, in order:
#   N × IO out port 0x512 size 1 count 1 (i & 0xff) for i = 0, 1, ..., N-1
#   N × MMIO write gpa 0x100000 len 1 data [i & 0xff] for i = 0, 1, ..., N-1
#   HLT
# That is without ioeventfds. With KVM_IOEVENTFD on port 0x512 (KVM_IOEVENTFD_FLAG_PIO) or on
# GPA 0x100000 the kernel signals an eventfd instead and the guest goes on: those writes make
# no exit at all (with a datamatch, only the writes of that value). `rawkvm bench doorbell`
# times both ways.

        .include "common.inc"

        .equ DOORBELL_PORT, 0x0512

_start:
        mov     dx, DOORBELL_PORT
        FOR_EACH_INDEX out dx, al
        # FS:0x0010 with FS = 0xFFFF is GPA 0x100000, past the RAM: an MMIO doorbell.
        mov     ax, HIGH_SEG
        mov     fs, ax
        FOR_EACH_INDEX mov fs:[HIGH_OFF], al
        HALT
