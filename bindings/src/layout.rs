//! Layout descriptions: what `pahole` would print for each struct, as data.
//!
//! Every ABI type in this crate is declared through the crate's `abi!` macro, which writes three
//! things from one declaration:
//!
//! 1. the `#[repr(C)]` type itself;
//! 2. compile-time assertions that its size, alignment and every field offset equal the numbers
//!    written in the declaration (the numbers `pahole` reports for the kernel's header);
//! 3. an associated `LAYOUT: StructLayout` whose offsets and sizes are *computed* with
//!    `offset_of!`/`size_of`, so the table cannot drift from the types.
//!
//! Field names in a layout are C member designators, the spelling `offsetof()` accepts. Types the
//! kernel leaves anonymous (the members of `kvm_run`'s exit union, for example) are declared with
//! the designator prefix that reaches them from the nearest kernel-named struct (`"io"` for the
//! `io` member of `kvm_run`), and a parent that contains them lists their fields in place:
//! `kvm_run`'s layout holds `io`, `io.direction`, ..., `io.data_offset`. Kernel-named structs
//! nested inside others (`struct kvm_segment cs`) appear as one field; they have layouts of their
//! own.

/// One field of a [`StructLayout`], in declaration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLayout {
    /// C member designator relative to the struct, e.g. `"rip"`, `"io.data_offset"`, `"s.regs"`.
    pub name: &'static str,
    /// Byte offset from the start of the struct (`offsetof()`).
    pub offset: usize,
    /// Size in bytes (`sizeof` of the member).
    pub size: usize,
    /// The member's type as the header spells it: `"__u64"`, `"__u8[8]"`, `"struct kvm_segment"`.
    pub c_type: &'static str,
    /// Kernel version that added the member, when it is newer than Linux 6.1.
    pub since: Option<&'static str>,
}

/// The layout of one kernel struct or union.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StructLayout {
    /// The kernel's name for the type (`"kvm_regs"`), or this crate's name for an anonymous one.
    pub name: &'static str,
    /// `sizeof`.
    pub size: usize,
    /// `_Alignof`.
    pub align: usize,
    /// Kernel version that added the type, when it is newer than Linux 6.1.
    pub since: Option<&'static str>,
    /// Every member, nested anonymous members flattened, in declaration order.
    pub fields: &'static [FieldLayout],
}

impl StructLayout {
    /// The field with this designator, if the layout has it.
    pub fn field(&self, name: &str) -> Option<&FieldLayout> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// The same lookup, usable in constants: `kvm_run::LAYOUT.field_named("io.port")`.
    pub const fn field_named(&self, name: &str) -> Option<FieldLayout> {
        let mut i = 0;
        while i < self.fields.len() {
            if bytes_equal(self.fields[i].name.as_bytes(), name.as_bytes()) {
                return Some(self.fields[i]);
            }
            i += 1;
        }
        None
    }
}

/// A value of all-zero bytes, built without `unsafe`: `kvm_regs::ZERO`, `kvm_sregs::ZERO`, ...
///
/// Every ABI type implements it (and `Default` returns it). For unions it is the zero value of
/// their largest member.
pub trait Zeroed: Copy {
    /// All fields zero.
    const ZERO: Self;
}

macro_rules! zeroed_integers {
    ($($int:ty),*) => { $(impl Zeroed for $int { const ZERO: Self = 0; })* };
}
zeroed_integers!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<T: Zeroed, const N: usize> Zeroed for [T; N] {
    const ZERO: Self = [T::ZERO; N];
}

/// A run of fields placed `shift` bytes into the struct being described.
///
/// `since` is the default for fields that carry no version of their own.
#[doc(hidden)]
#[derive(Clone, Copy)]
pub struct Part {
    pub shift: usize,
    pub since: Option<&'static str>,
    pub fields: &'static [FieldLayout],
}

/// How many fields `parts` hold together (the length [`join`] needs).
#[doc(hidden)]
pub const fn count(parts: &[Part]) -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < parts.len() {
        total += parts[i].fields.len();
        i += 1;
    }
    total
}

/// Concatenates `parts` into one array, shifting each part's offsets into place.
#[doc(hidden)]
pub const fn join<const N: usize>(parts: &[Part]) -> [FieldLayout; N] {
    const UNSET: FieldLayout = FieldLayout {
        name: "",
        offset: 0,
        size: 0,
        c_type: "",
        since: None,
    };
    let mut out = [UNSET; N];
    let mut next = 0;
    let mut i = 0;
    while i < parts.len() {
        let part = parts[i];
        let mut j = 0;
        while j < part.fields.len() {
            let mut field = part.fields[j];
            field.offset += part.shift;
            field.since = first_some(field.since, part.since);
            out[next] = field;
            next += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(next == N, "join: length does not match count()");
    out
}

/// `a.or(b)`, usable in constants.
#[doc(hidden)]
pub const fn first_some(a: Option<&'static str>, b: Option<&'static str>) -> Option<&'static str> {
    match a {
        Some(_) => a,
        None => b,
    }
}

/// Drops the trailing `_` that turns a C member named like a Rust keyword into a Rust identifier
/// (`type` is declared `type_`), so layouts use the C spelling.
#[doc(hidden)]
pub const fn c_spelling(rust_designator: &'static str) -> &'static str {
    let bytes = rust_designator.as_bytes();
    match bytes.split_last() {
        Some((b'_', head)) => match core::str::from_utf8(head) {
            Ok(trimmed) => trimmed,
            Err(_) => panic!("designator is not UTF-8"),
        },
        _ => rust_designator,
    }
}

/// Whether the member named `member` of a union with these `(name, size)` members is as large
/// as the union (`union_size`).
#[doc(hidden)]
pub const fn member_spans(members: &[(&str, usize)], member: &str, union_size: usize) -> bool {
    let mut i = 0;
    while i < members.len() {
        let (name, size) = members[i];
        if bytes_equal(name.as_bytes(), member.as_bytes()) {
            return size == union_size;
        }
        i += 1;
    }
    false
}

const fn bytes_equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Concatenates two constant tables (the common part and an architecture's part) into one array.
#[doc(hidden)]
pub const fn concat<T: Copy, const N: usize>(first: &[T], second: &[T]) -> [T; N] {
    assert!(
        first.len() + second.len() == N && N > 0,
        "concat: wrong length"
    );
    let seed = if first.is_empty() {
        second[0]
    } else {
        first[0]
    };
    let mut out = [seed; N];
    let mut i = 0;
    while i < first.len() {
        out[i] = first[i];
        i += 1;
    }
    let mut j = 0;
    while j < second.len() {
        out[first.len() + j] = second[j];
        j += 1;
    }
    out
}

/// Declares a `#[repr(C)]` struct or union of the kernel ABI, its layout assertions and its
/// [`StructLayout`], from one description.
///
/// ```text
/// abi! {
///     /// doc
///     #[derive(Clone, Copy, Debug, PartialEq, Eq)]
///     pub struct kvm_run_exit_io in "io" (size 16, align 8) {
///         /// doc
///         pub direction: u8 => (0, "__u8"),
///         ...
///     }
/// }
/// ```
///
/// - `in "io"`: the designator prefix of an anonymous type (omit it for kernel-named types).
/// - `(size S, align A [, since "6.8"])`: `sizeof`/`_Alignof` from the header, asserted.
///   Unions add `zeroed by MEMBER`, the member (as large as the union) that `ZERO` sets.
/// - each field: `=> (OFFSET, "c type" [, since "x.y"])` for a plain member;
///   `=> (OFFSET, inline [, since "x.y"])` for a C anonymous struct/union whose members the
///   kernel reaches without a name (only its fields are listed);
///   `=> (OFFSET, "c type", expand [, since "x.y"])` for a named member of anonymous type (the
///   member and then its fields are listed).
///
/// The offsets written here are the header's; the ones in `LAYOUT` are computed.
macro_rules! abi {
    (
        $(#[$attr:meta])*
        pub $kind:ident $name:ident $(in $prefix:literal)?
            (size $size:literal, align $align:literal $(, zeroed by $zero:ident)?
                $(, since $since:literal)?) {
            $( $(#[$fattr:meta])* pub $field:ident : $ty:ty => $spec:tt ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[repr(C)]
        pub $kind $name {
            $(
                $(#[$fattr])*
                #[doc = $crate::layout::abi!(@field_doc $ty, $spec)]
                pub $field: $ty,
            )*
        }

        $crate::layout::abi!(@zeroed $kind $name [$($zero)?] $( $field: $ty ),*);
        $crate::layout::abi!(@describe $name [$($prefix)?] ($size, $align, [$($since)?])
            $( $field: $ty => $spec ),*);
    };

    // A struct is zero when every field is.
    (@zeroed struct $name:ident [] $( $field:ident : $ty:ty ),*) => {
        impl $crate::layout::Zeroed for $name {
            const ZERO: Self = Self {
                $( $field: <$ty as $crate::layout::Zeroed>::ZERO, )*
            };
        }
    };
    // A union is zero through one member, which must span it, or some bytes stay uninitialised.
    (@zeroed union $name:ident [$zero:ident] $( $field:ident : $ty:ty ),*) => {
        impl $crate::layout::Zeroed for $name {
            const ZERO: Self = Self { $zero: $crate::layout::Zeroed::ZERO };
        }
        const _: () = assert!(
            $crate::layout::member_spans(
                &[$( (stringify!($field), core::mem::size_of::<$ty>()) ),*],
                stringify!($zero),
                core::mem::size_of::<$name>(),
            ),
            concat!(stringify!($name), ": `zeroed by ", stringify!($zero),
                "` names a member smaller than the union"),
        );
    };

    // Assertions, `LAYOUT` and `Default`, shared by structs and unions.
    (@describe $name:ident $prefix:tt ($size:literal, $align:literal, [$($since:literal)?])
        $( $field:ident : $ty:ty => $spec:tt ),*) => {
        // The header's numbers, checked at compile time; a failure names the struct and field.
        // The size as static_assertions states it: the type must be as big as `[u8; SIZE]`,
        // and a mismatch is a compile error naming both types and their sizes in bits.
        static_assertions::assert_eq_size!($name, [u8; $size]);
        const _: () = assert!(
            core::mem::align_of::<$name>() == $align,
            concat!("alignment of ", stringify!($name), " is not the header's ", $align),
        );
        $(
            const _: () = assert!(
                memoffset::offset_of!($name, $field) == $crate::layout::abi!(@offset $spec),
                concat!("offset of ", stringify!($name), ".", stringify!($field),
                    " is not the header's ", $crate::layout::abi!(@offset $spec)),
            );
        )*

        impl $name {
            /// Size, alignment and every member's offset, size and C type (see
            /// [`StructLayout`](crate::layout::StructLayout)).
            pub const LAYOUT: $crate::layout::StructLayout = $crate::layout::StructLayout {
                name: stringify!($name),
                size: core::mem::size_of::<$name>(),
                align: core::mem::align_of::<$name>(),
                since: $crate::layout::abi!(@since $($since)?),
                fields: {
                    // Unused by a struct without members (the empty `kvm_sregs` of arm64).
                    #[allow(dead_code)]
                    const SINCE: Option<&str> = $crate::layout::abi!(@since $($since)?);
                    const PARTS: &[$crate::layout::Part] = &[$(
                        $crate::layout::abi!(@part $name $prefix SINCE $field: $ty => $spec)
                    ),*];
                    &$crate::layout::join::<{ $crate::layout::count(PARTS) }>(PARTS)
                },
            };
        }

        impl Default for $name {
            fn default() -> Self {
                <$name as $crate::layout::Zeroed>::ZERO
            }
        }
    };

    (@offset ($offset:literal $($rest:tt)*)) => { $offset };

    (@since) => { None };
    (@since $since:literal) => { Some($since) };

    (@designator [] $field:ident) => {
        $crate::layout::c_spelling(stringify!($field))
    };
    (@designator [$prefix:literal] $field:ident) => {
        $crate::layout::c_spelling(concat!($prefix, ".", stringify!($field)))
    };

    (@field_doc $ty:ty, ($offset:literal, inline $(, since $since:literal)?)) => {
        concat!("\n\nAnonymous C member at offset ", $offset, $(", since Linux ", $since,)? ".")
    };
    (@field_doc $ty:ty,
        ($offset:literal, $c_type:literal $(, expand)? $(, since $since:literal)?)) => {
        concat!("\n\nC: `", $c_type, "` at offset ", $offset, $(", since Linux ", $since,)? ".")
    };

    // A plain member: one field.
    (@part $name:ident $prefix:tt $default_since:ident
        $field:ident : $ty:ty => ($offset:literal, $c_type:literal $(, since $since:literal)?)) => {
        $crate::layout::Part {
            shift: 0,
            since: $default_since,
            fields: &[$crate::layout::FieldLayout {
                name: $crate::layout::abi!(@designator $prefix $field),
                offset: memoffset::offset_of!($name, $field),
                size: core::mem::size_of::<$ty>(),
                c_type: $c_type,
                since: $crate::layout::abi!(@since $($since)?),
            }],
        }
    };
    // A C anonymous member: its fields, in place.
    (@part $name:ident $prefix:tt $default_since:ident
        $field:ident : $ty:ty => ($offset:literal, inline $(, since $since:literal)?)) => {
        $crate::layout::Part {
            shift: memoffset::offset_of!($name, $field),
            since: $crate::layout::first_some(
                $crate::layout::abi!(@since $($since)?),
                $default_since,
            ),
            fields: <$ty>::LAYOUT.fields,
        }
    };
    // A named member of anonymous type: the member, then its fields.
    (@part $name:ident $prefix:tt $default_since:ident
        $field:ident : $ty:ty => ($offset:literal, $c_type:literal, expand
            $(, since $since:literal)?)) => {
        $crate::layout::Part {
            shift: 0,
            since: $default_since,
            fields: {
                const SINCE: Option<&str> = $crate::layout::first_some(
                    $crate::layout::abi!(@since $($since)?),
                    <$ty>::LAYOUT.since,
                );
                const MEMBER: &[$crate::layout::Part] = &[
                    $crate::layout::Part {
                        shift: 0,
                        since: SINCE,
                        fields: &[$crate::layout::FieldLayout {
                            name: $crate::layout::abi!(@designator $prefix $field),
                            offset: memoffset::offset_of!($name, $field),
                            size: core::mem::size_of::<$ty>(),
                            c_type: $c_type,
                            since: None,
                        }],
                    },
                    $crate::layout::Part {
                        shift: memoffset::offset_of!($name, $field),
                        since: SINCE,
                        fields: <$ty>::LAYOUT.fields,
                    },
                ];
                &$crate::layout::join::<{ $crate::layout::count(MEMBER) }>(MEMBER)
            },
        }
    };
}
pub(crate) use abi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_spelling_drops_the_keyword_escape_only() {
        assert_eq!(c_spelling("system_event.type_"), "system_event.type");
        assert_eq!(c_spelling("type_"), "type");
        assert_eq!(c_spelling("io.port"), "io.port");
        assert_eq!(c_spelling(""), "");
    }

    #[test]
    fn concat_keeps_order() {
        const BOTH: [u8; 5] = concat(&[1, 2], &[3, 4, 5]);
        assert_eq!(BOTH, [1, 2, 3, 4, 5]);
        const SECOND_ONLY: [u8; 2] = concat(&[], &[7, 8]);
        assert_eq!(SECOND_ONLY, [7, 8]);
    }
}
