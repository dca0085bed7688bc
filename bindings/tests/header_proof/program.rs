//! The C file: one `.ascii "->KIND NAME... VALUE"` directive per fact, `->M ...` for what the
//! header lacks.

use std::fmt::Write as _;

use super::claims::Claims;

/// `#if` condition for "the header is at least Linux `since`" ("6.8" -> 6, 8).
fn at_least(since: &str) -> String {
    let (major, minor) = since.split_once('.').expect("`since` is MAJOR.MINOR");
    format!("HEADER_AT_LEAST({major}, {minor})")
}

/// C members whose offset cannot be taken: bitfields, written `"__u8 a : 1, b : 7"`.
pub fn is_bitfield(c_type: &str) -> bool {
    c_type.contains(" : ")
}

const PRELUDE: &str = "\
#include <stddef.h>
#include <linux/kvm.h>
#if defined(__has_include)
#if __has_include(<linux/version.h>)
#include <linux/version.h>
#endif
#endif
#ifdef LINUX_VERSION_CODE
#define HEADER_AT_LEAST(major, minor) (LINUX_VERSION_CODE >= KERNEL_VERSION(major, minor, 0))
#else
#define HEADER_AT_LEAST(major, minor) 0
#define LINUX_VERSION_CODE 0
#endif
/* asm-offsets: the value is an immediate operand; compile with -S, never run. */
#define EMIT(text, value) __asm__ volatile(\".ascii \\\"->\" text \" %0\\\"\" : : \"i\"((long long)(value)))
#define MISSING(text) __asm__ volatile(\".ascii \\\"->M \" text \"\\\"\")

void rawkvm_abi_proof(void)
{
\tEMIT(\"V\", LINUX_VERSION_CODE);
";

/// The whole C file for `claims`.
pub fn c_program(claims: &Claims) -> String {
    let mut c = String::from(PRELUDE);
    for layout in claims.layouts {
        let ty = format!("struct {}", layout.name);
        let guard = layout.since.map(at_least);
        if let Some(guard) = &guard {
            let _ = writeln!(c, "#if {guard}");
        }
        let _ = writeln!(
            c,
            "\tEMIT(\"S {0} size\", sizeof({ty}));\n\tEMIT(\"S {0} align\", _Alignof({ty}));",
            layout.name
        );
        for field in layout.fields.iter().filter(|f| !is_bitfield(f.c_type)) {
            let field_guard = field.since.filter(|_| guard.is_none()).map(at_least);
            if let Some(field_guard) = &field_guard {
                let _ = writeln!(c, "#if {field_guard}");
            }
            let _ = writeln!(
                c,
                "\tEMIT(\"F {0} {1} offset\", offsetof({ty}, {1}));\n\
                 \tEMIT(\"F {0} {1} size\", sizeof((({ty} *)0)->{1}));",
                layout.name, field.name
            );
            if field_guard.is_some() {
                let _ = writeln!(
                    c,
                    "#else\n\tMISSING(\"F {} {}\");\n#endif",
                    layout.name, field.name
                );
            }
        }
        if guard.is_some() {
            let _ = writeln!(c, "#else\n\tMISSING(\"S {}\");\n#endif", layout.name);
        }
    }
    for name in claims.ioctls.iter().map(|ioctl| ioctl.name) {
        let _ = writeln!(
            c,
            "#ifdef {name}\n\tEMIT(\"I {name}\", (unsigned int)({name}));\n\
             #else\n\tMISSING(\"I {name}\");\n#endif"
        );
    }
    for constant in &claims.constants {
        let name = constant.name;
        let newer = constant
            .since
            .map_or(String::new(), |since| format!(" && {}", at_least(since)));
        let _ = writeln!(
            c,
            "#if defined({name}){newer}\n\tEMIT(\"C {name}\", {name});\n\
             #else\n\tMISSING(\"C {name}\");\n#endif"
        );
    }
    for expression in &claims.expressions {
        let _ = writeln!(c, "\tEMIT(\"X {}\", {});", expression.name, expression.c);
    }
    c.push_str("}\n");
    c
}
