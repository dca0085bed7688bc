# rawkvm guest: readonly
# Writes 0x5A into a read-only memory slot at GPA 0x20000 (pre-filled with 0xA5), reads the byte back and prints it in hex ("A5" and a newline).
# setup: mem=64K readonly=0x20000+0x1000:0xa5
#
# Exits, in order:
#   MMIO write gpa 0x20000 len 1 data [5a] (KVM_MEM_READONLY: writes go to the VMM, which must ignore them)
#   3 × IO out port 0xe9 size 1 count 1 ("A5\n"; the read does not exit and still sees 0xa5)
#   HLT

        .include "common.inc"
_start:
        # ES:0 with ES = 0x2000 is GPA 0x20000, the first byte of the read-only slot.
        mov     ax, 0x2000
        mov     es, ax

        # The write cannot land in read-only memory: KVM reports it to the VMM as MMIO.
        mov     byte ptr es:[0], 0x5A

        # Reads of a read-only slot are plain memory reads: no exit, the original byte.
        xor     eax, eax
        mov     al, es:[0]

        # Print it: "A5" and a newline (the 0x5A never landed).
        mov     cx, 2
        call    print_hex
        PUTC    '\n'
        HALT

        .include "lib.inc"
