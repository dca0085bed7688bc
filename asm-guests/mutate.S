# rawkvm guest: mutate
# Increments a 32-bit counter kept inside its own image, dirties two other pages and several registers, prints the counter (8 hex digits and a newline), then halts.
#
# Exits, in order:
#   9 × IO out port 0xe9 size 1 count 1 ("00000001\n" on a fresh VM; "00000002\n" if the memory of an earlier run was kept)
#   HLT
# At the HLT: EAX = counter, EBX = 0xB0B0B0B0, ECX = 0xC1C1C1C1, EDX = 0xD0D0D0D0, EBP = 0x0BADF00D, EDI = 0xD1D1D1D1,
# ES = 0x0800, GS = 0x0900, SP = 0x0E00; GPA 0x8000 holds 0xC0FFEE00 + counter, GPA 0x9000 the counter.
# The counter itself is the last 4 bytes of the image (GPA 0x1000 + image length - 4), 0 in the image.

        .include "common.inc"
_start:
        # The counter lives in the image itself, so a VMM that reloads the image (or restores
        # memory) between runs always sees it go from 0 to 1.
        mov     eax, [counter]
        inc     eax
        mov     [counter], eax

        # Dirty two more pages: ES = 0x0800 reaches GPA 0x8000, GS = 0x0900 reaches 0x9000.
        mov     bx, 0x0800
        mov     es, bx
        mov     bx, 0x0900
        mov     gs, bx
        mov     edx, 0xC0FFEE00
        add     edx, eax
        mov     es:[0], edx
        mov     gs:[0], eax

        # Report the counter.
        mov     cx, 8
        call    print_hex
        PUTC    '\n'

        # Leave recognisable values in registers a reset must put back.
        mov     eax, [counter]
        mov     ebx, 0xB0B0B0B0
        mov     ecx, 0xC1C1C1C1
        mov     edx, 0xD0D0D0D0
        mov     ebp, 0x0BADF00D
        mov     edi, 0xD1D1D1D1
        mov     sp, 0x0E00
        HALT

        .include "lib.inc"

        # The only data: guest.ld places .data last, so the counter ends the image.
        .data
        .p2align 2
counter:
        .long   0
