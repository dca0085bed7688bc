# rawkvm guest: in_unhandled
# Writes 'A' to COM1, then reads 1, 2 and 4 bytes from the unhandled port 0x1234 and prints what it got: "A FF FFFF FFFFFFFF" and a newline.
#
# Exits, in order:
#   IO out port 0x3f8 size 1 count 1 ('A')
#   IO in port 0x1234 size 1 count 1
#   3 × IO out port 0xe9 size 1 count 1 (" FF")
#   IO in port 0x1234 size 2 count 1
#   5 × IO out port 0xe9 size 1 count 1 (" FFFF")
#   IO in port 0x1234 size 4 count 1
#   10 × IO out port 0xe9 size 1 count 1 (" FFFFFFFF\n")
#   HLT
# Console: "A FF FFFF FFFFFFFF\n" (values in upper-case hex, 2/4/8 digits). A VMM that does not
# fill the PIO data page for IN makes the guest print other values: "A 00 0000 00000000\n" on
# this kernel (6.18 zeroes the page before an IN exit), or stale bytes such as "41" on others.

        .include "common.inc"

        .equ UNHANDLED_PORT, 0x1234

_start:
        # Put a known byte ('A' = 0x41) through the PIO data page first.
        mov     dx, COM1_DATA
        mov     al, 'A'
        out     dx, al

        # 1-byte read, printed as 2 digits. Start EAX as zero so only what `in` sets shows.
        mov     dx, UNHANDLED_PORT
        xor     eax, eax
        in      al, dx
        mov     cx, 2
        call    print_value

        # 2-byte read, 4 digits.
        xor     eax, eax
        in      ax, dx
        mov     cx, 4
        call    print_value

        # 4-byte read, 8 digits, then the end of the line.
        in      eax, dx
        mov     cx, 8
        call    print_value
        PUTC    '\n'
        HALT

# print_value: a space, then the low CX hex digits of EAX. Keeps DX (the port) and EAX.
print_value:
        push    ax
        PUTC    ' '
        pop     ax
        call    print_hex
        ret

        .include "lib.inc"
