# rawkvm guest: pio_loop
# Writes N bytes to the unused port 0x510 with one-byte OUTs (byte i = i & 0xFF), N from the parameter block, then halts.
# setup: param=1000
#
# Exits, in order:
#   N × IO out port 0x510 size 1 count 1 (byte i & 0xff for i = 0, 1, ..., N-1; N = 32-bit value at 0x0F00)
#   HLT

        .include "common.inc"
_start:
        # Each `out` to a port KVM does not handle itself is one exit to the VMM, which
        # ignores it (the port is unused) and runs the guest again: a pure exit round trip.
        mov     dx, SPARE_PORT
        FOR_EACH_INDEX out dx, al
        HALT
