//! Named constants: each `pub const` and its row in a `(value, "NAME")` table come from one list.
//!
//! Tracing, error messages and the `caps` command print kernel names (`KVM_EXIT_IO`), never bare
//! numbers; the tables here are where those names come from.

/// Declares a group of kernel constants and the table that names them.
///
/// ```text
/// named_constants! {
///     /// What the group is (shown on the table).
///     pub const EXIT_REASONS: [u32];
///     /// What this one means.
///     KVM_EXIT_IO = 2,
/// }
/// ```
///
/// expands to `pub const KVM_EXIT_IO: u32 = 2;` and
/// `pub const EXIT_REASONS: &[(u32, &str)] = &[(KVM_EXIT_IO, "KVM_EXIT_IO"), ...];`.
macro_rules! named_constants {
    (
        $(#[$table_attr:meta])*
        pub const $table:ident: [$ty:ty];
        $(
            $(#[$attr:meta])*
            $name:ident = $value:expr
        ),* $(,)?
    ) => {
        $(
            $(#[$attr])*
            #[doc = concat!("\n\n`", stringify!($name), "` = `", stringify!($value),
                "`; named in [`", stringify!($table), "`].")]
            pub const $name: $ty = $value;
        )*

        $(#[$table_attr])*
        pub const $table: &[($ty, &str)] = &[$( ($name, stringify!($name)) ),*];
    };
}
pub(crate) use named_constants;

/// The name `table` gives `value`: the first row whose value matches.
pub const fn name_in(table: &[(u32, &'static str)], value: u32) -> Option<&'static str> {
    let mut i = 0;
    while i < table.len() {
        if table[i].0 == value {
            return Some(table[i].1);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    named_constants! {
        /// Test table.
        pub const COLOURS: [u32];
        /// Red.
        RED = 1,
        GREEN = 1 << 1,
    }

    #[test]
    fn constants_and_table_agree() {
        assert_eq!(RED, 1);
        assert_eq!(GREEN, 2);
        assert_eq!(COLOURS, &[(1, "RED"), (2, "GREEN")]);
        assert_eq!(name_in(COLOURS, 2), Some("GREEN"));
        assert_eq!(name_in(COLOURS, 3), None);
    }
}
