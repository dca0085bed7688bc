# rawkvm guest: hello
# Prints "Hello from aarch64!" and a newline on the PL011 UART, reading its flag register before each byte, then powers off (PSCI SYSTEM_OFF).
#
# Exits, in order:
#   20 × { MMIO read gpa 0x9000018 len 4 (flag register, reads [90 00 00 00]); MMIO write gpa 0x9000000 len 1 (the byte) }
#   SYSTEM_EVENT type 1 (SHUTDOWN) data [0]

        .include "aarch64/common.inc"
_start:
        adr     x1, message
        MOV32   x2, UART_BASE

next_byte:
        // The next character (RAM: no exit); the NUL at the end of the string means done.
        ldrb    w3, [x1], #1
        cbz     w3, done
        // Wait while the transmit FIFO is full. A plain 32-bit load: KVM can only forward
        // loads and stores with a valid syndrome (no writeback, no pairs) as KVM_EXIT_MMIO.
wait_for_uart:
        ldr     w4, [x2, #UART_FR]
        tbnz    w4, #UART_FR_TXFF_BIT, wait_for_uart
        // The byte to the data register; the VMM copies it to stdout.
        strb    w3, [x2, #UART_DR]
        b       next_byte

done:
        PSCI    PSCI_SYSTEM_OFF

message:
        .asciz  "Hello from aarch64!\n"
