# rawkvm guest: user_hello
# Prints "Hello from user mode!" and a newline on the MMIO console at CPL 3, then ends the run through the exit device.
# setup: mode=user
#
# Exits, in order (without coalescing):
#   22 × MMIO write gpa 0xd0000000 len 1 (the bytes of "Hello from user mode!\n")
#   MMIO write gpa 0xd0000008 len 4 data [00 00 00 00] (the exit device: status 0)
# At CPL 3 `in`/`out` and `hlt` raise #GP, so a user-mode program prints through the MMIO
# console and ends through the exit device's MMIO register.

        .include "common64.inc"
_start:
        lea     rsi, [rip + message]
        call    print_str
        EXIT    0

message:
        .asciz  "Hello from user mode!\n"

        .include "lib64.inc"
