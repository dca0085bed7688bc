# rawkvm guest: hello
# Prints "Hello from real mode!" and a newline on COM1, polling the line status register before each byte.
#
# Exits, in order:
#   22 × { IO in port 0x3fd size 1 count 1 (reads 0x60); IO out port 0x3f8 size 1 count 1 (the byte) }
#   HLT

        .include "common.inc"
_start:
        mov     si, offset message

next_byte:
        # Load the next character; the NUL at the end of the string means we are done.
        mov     bl, [si]
        test    bl, bl
        jz      done

        # Wait until COM1 can take a byte: read the line status register until bit 5
        # ("transmit holding register empty") is set. The VMM answers 0x60, so one read does.
        mov     dx, COM1_LSR
wait_for_uart:
        in      al, dx
        test    al, LSR_THR_EMPTY
        jz      wait_for_uart

        # Hand the byte to the transmit register; the VMM copies it to stdout.
        mov     al, bl
        mov     dx, COM1_DATA
        out     dx, al

        inc     si
        jmp     next_byte

done:
        HALT

message:
        .asciz  "Hello from real mode!\n"
