# rawkvm guest: smp
# Every vCPU writes one byte, '0' + its index (from ESI), to the debug console, then halts; the stack is not used.
# setup: vcpus=4
#
# Exits, in order:
#   per vCPU i: IO out port 0xe9 size 1 count 1 ('0' + (i & 0x3f)); HLT
#   (the order across vCPUs is not defined)

        .include "common.inc"
_start:
        # All vCPUs share the same memory and the same SS:SP, so this guest touches no memory:
        # registers only. The VMM puts the vCPU index in ESI.
        mov     eax, esi
        and     al, 0x3F
        add     al, '0'
        out     CONSOLE, al
        HALT
