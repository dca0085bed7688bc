# rawkvm guest: long_hello
# Prints "Hello from long mode!" and a newline on the debug console, in 64-bit long mode at CPL 0 set up by the host.
# setup: mode=long
#
# Exits, in order:
#   22 × IO out port 0xe9 size 1 count 1 (the bytes of "Hello from long mode!\n")
#   HLT
# The host enters at RIP 0x1000 with CS = 0x18 (64-bit), paging on (RAM identity-mapped),
# EFER = LME|LMA, RSP at the top of RAM. Port I/O works at CPL 0.

        .include "common64.inc"
_start:
        lea     rsi, [rip + message]
        call    print_str
        HALT

message:
        .asciz  "Hello from long mode!\n"

        .set    LIB64_PORT_CONSOLE, 1
        .include "lib64.inc"
