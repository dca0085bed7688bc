# rawkvm guest: hello
# Prints "Hello from riscv64!" and a newline on the NS16550 UART, polling its line status register before each byte, then powers off (SBI SRST).
#
# Exits, in order:
#   20 × { MMIO read gpa 0x10000005 len 1 (line status, reads [60]); MMIO write gpa 0x10000000 len 1 (the byte) }
#   SYSTEM_EVENT type 1 (SHUTDOWN) data [0]

        .include "riscv64/common.inc"
_start:
        la      a1, message
        li      a2, UART_BASE

next_byte:
        # The next character (RAM: no exit); the NUL at the end of the string means done.
        lbu     a3, 0(a1)
        beqz    a3, done
        # Wait until the transmit holding register is empty.
wait_for_uart:
        lbu     a4, UART_LSR(a2)
        andi    a4, a4, UART_LSR_THRE
        beqz    a4, wait_for_uart
        # The byte to the transmit register; the VMM copies it to stdout.
        sb      a3, UART_THR(a2)
        addi    a1, a1, 1
        j       next_byte

done:
        POWER_OFF

message:
        .asciz  "Hello from riscv64!\n"
