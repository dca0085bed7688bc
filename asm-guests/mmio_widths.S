# rawkvm guest: mmio_widths
# MMIO reads of 1, 2, 4 and 8 bytes, writes of 8, 4, 2 and 1 bytes, and two reads that straddle a page, all above 1 MiB; prints every value read in hex.
#
# Exits, in order:
#   MMIO read gpa 0x100000 len 1
#   MMIO read gpa 0x100010 len 2
#   MMIO read gpa 0x100020 len 4
#   MMIO read gpa 0x100030 len 8 (movq mm0)
#   MMIO write gpa 0x100040 len 8 data [88 99 aa bb cc dd ee ff] (movq of 0xFFEEDDCCBBAA9988)
#   MMIO write gpa 0x100050 len 4 data [44 55 66 77] (0x77665544)
#   MMIO write gpa 0x100060 len 2 data [22 33] (0x3322)
#   MMIO write gpa 0x100070 len 1 data [11] (0x11)
#   MMIO read gpa 0x100ffe len 2 (first half of a 4-byte read at 0x100ffe)
#   MMIO read gpa 0x101000 len 2 (second half)
#   MMIO read gpa 0x100ffd len 3 (first piece of an 8-byte movq read at 0x100ffd)
#   MMIO read gpa 0x101000 len 5 (second piece)
#   60 × IO out port 0xe9 size 1 count 1 (the six values read, upper-case hex, little-endian assembly, 2/4/8/16/8/16 digits, space-separated, then "\n")
#   HLT
# Console with the all-ones filler: "FF FFFF FFFFFFFF FFFFFFFFFFFFFFFF FFFFFFFF FFFFFFFFFFFFFFFF\n".
# Writes go from wide to narrow so that a VMM reading data[] past len would see stale bytes.

        .include "common.inc"

        # Where the values read are kept until they are printed (RAM below the image).
        .equ READ_1,  0x0800
        .equ READ_2,  0x0808
        .equ READ_4,  0x0810
        .equ READ_8,  0x0818
        .equ SPLIT_4, 0x0820
        .equ SPLIT_8, 0x0828

_start:
        # MMX instructions need CR0.EM (bit 2) and CR0.TS (bit 3) clear; set CR0.MP (bit 1).
        mov     eax, cr0
        and     eax, ~0x0C
        or      eax, 0x02
        mov     cr0, eax

        # FS = 0xFFFF: FS:offset is GPA 0xFFFF0 + offset, so FS:0x0010 is 0x100000 (no RAM).
        mov     ax, HIGH_SEG
        mov     fs, ax

        # Reads of each width. KVM asks the VMM for the bytes, one exit per access.
        xor     eax, eax
        mov     al, fs:[0x0010]                 # 0x100000, 1 byte
        mov     [READ_1], eax
        mov     ax, fs:[0x0020]                 # 0x100010, 2 bytes
        mov     [READ_2], eax
        mov     eax, fs:[0x0030]                # 0x100020, 4 bytes
        mov     [READ_4], eax
        movq    mm0, fs:[0x0040]                # 0x100030, 8 bytes through an MMX register
        movq    [READ_8], mm0

        # Writes of each width, widest first. The VMM must use only data[..len].
        movq    mm1, [wide_value]
        movq    fs:[0x0050], mm1                # 0x100040, 8 bytes
        mov     dword ptr fs:[0x0060], 0x77665544 # 0x100050, 4 bytes
        mov     word ptr fs:[0x0070], 0x3322    # 0x100060, 2 bytes
        mov     byte ptr fs:[0x0080], 0x11      # 0x100070, 1 byte

        # Reads that cross the page boundary at 0x101000: KVM splits each into two exits.
        mov     eax, fs:[0x100E]                # 0x100ffe: 2 + 2 bytes
        mov     [SPLIT_4], eax
        movq    mm0, fs:[0x100D]                # 0x100ffd: 3 + 5 bytes
        movq    [SPLIT_8], mm0
        # No `emms` here: nothing uses the x87 FPU afterwards, and KVM's instruction emulator
        # (which runs every instruction of a real-mode guest on a PVM host) cannot emulate it:
        # it would end the run with KVM_EXIT_INTERNAL_ERROR.

        # Print the six values, space-separated, then a newline.
        mov     eax, [READ_1]
        mov     cx, 2
        call    print_hex
        PUTC    ' '
        mov     eax, [READ_2]
        mov     cx, 4
        call    print_hex
        PUTC    ' '
        mov     eax, [READ_4]
        mov     cx, 8
        call    print_hex
        PUTC    ' '
        mov     si, READ_8
        call    print_hex64
        PUTC    ' '
        mov     eax, [SPLIT_4]
        call    print_hex
        PUTC    ' '
        mov     si, SPLIT_8
        call    print_hex64
        PUTC    '\n'
        HALT

        .p2align 3
wide_value:
        .quad   0xFFEEDDCCBBAA9988

        .include "lib.inc"
