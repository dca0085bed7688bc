# rawkvm guest: insb
# Prints "insb: ", reads 8192 bytes from the unhandled port 0x511 with one `rep insb`, then prints their 32-bit sum as 8 hex digits and a newline.
#
# Exits, in order:
#   6 × IO out port 0xe9 size 1 count 1 ("insb: ")
#   8 × IO in port 0x511 size 1 count 1024 (KVM batches the string input; a VMM must fill all count × size bytes)
#   9 × IO out port 0xe9 size 1 count 1 (the sum: "001FE000\n" when every byte reads 0xff)
#   HLT
# With a port whose i-th byte is i & 0xff (counted over all 8192 or per exit) the sum is 000FF000. A VMM
# that does not fill the PIO data page gives 00000000 on this kernel (it zeroes the page before an
# IN exit) and other sums where stale bytes are left there.

        .include "common.inc"

        .equ BUFFER, 0x4000             # 8 KiB buffer in RAM, outside the image
        .equ BUFFER_LEN, 8192

_start:
        # Print the prefix first. Its bytes (none of them 0xff) pass through the PIO data page
        # of kvm_run, so a VMM that forgot to fill that page for IN could leave them there, and
        # the sum below would be wrong.
        mov     si, offset prefix
        call    print_str

        # String input: ES:DI is the destination, CX the element count, DX the port.
        cld
        mov     di, BUFFER
        mov     cx, BUFFER_LEN
        mov     dx, SPARE_PORT_IN
        rep insb

        # Add up the bytes the VMM supplied, 32 bits wide.
        mov     si, BUFFER
        mov     cx, BUFFER_LEN
        xor     ebx, ebx
        xor     eax, eax
sum_next:
        lodsb
        add     ebx, eax
        loop    sum_next

        # Report the sum as 8 hex digits and a newline.
        mov     eax, ebx
        mov     cx, 8
        call    print_hex
        PUTC    '\n'
        HALT

prefix:
        .asciz  "insb: "

        .include "lib.inc"
