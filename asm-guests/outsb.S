# rawkvm guest: outsb
# Sends "rep outsb: hello" and a newline to the debug console with a single `rep outsb`, then halts.
#
# Exits, in order:
#   17 × IO out port 0xe9 size 1 count 1 (the bytes of "rep outsb: hello\n"; this host gives one exit per byte, a VMM must also accept count > 1)
#   HLT

        .include "common.inc"
_start:
        # String output: DS:SI is the source, CX the byte count, DX the port; CLD makes SI count up.
        # One instruction, but KVM may hand it to the VMM in several exits, each with a count.
        cld
        mov     si, offset message
        mov     cx, message_end - message
        mov     dx, CONSOLE
        rep outsb
        HALT

message:
        .ascii  "rep outsb: hello\n"
message_end:
