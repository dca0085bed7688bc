//! A small command-line parser: `--flag value`, `--flag=value`, positionals, and errors that
//! say which flag was wrong and how to get help.

use std::collections::VecDeque;
use std::ffi::OsString;

/// The words after the subcommand, consumed front to back.
#[derive(Debug)]
pub struct Args {
    words: VecDeque<String>,
}

/// One parsed word.
#[derive(Debug, PartialEq, Eq)]
pub enum Arg {
    /// `--name` or `--name=value` (the value kept for [`Args::value`]).
    Flag(String, Option<String>),
    /// Anything else.
    Positional(String),
}

impl Args {
    /// Takes the raw arguments; non-UTF-8 ones are an error naming the argument.
    pub fn new(raw: Vec<OsString>) -> Result<Args, String> {
        let words = raw
            .into_iter()
            .map(|word| {
                word.into_string()
                    .map_err(|w| format!("argument {w:?} is not valid UTF-8"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Args { words })
    }

    /// Whether any remaining word is `--help` or `-h` (values of other flags included: a
    /// guest image called `-h` is not worth the surprise).
    pub fn asks_for_help(&self) -> bool {
        self.words
            .iter()
            .any(|word| word == "--help" || word == "-h")
    }

    /// The next word, parsed.
    pub fn next_arg(&mut self) -> Option<Arg> {
        let word = self.words.pop_front()?;
        Some(match word.strip_prefix("--") {
            Some(flag) if !flag.is_empty() => match flag.split_once('=') {
                Some((name, value)) => Arg::Flag(format!("--{name}"), Some(value.to_string())),
                None => Arg::Flag(word, None),
            },
            _ if word.len() == 2 && word.starts_with('-') => Arg::Flag(word, None),
            _ => Arg::Positional(word),
        })
    }

    /// The value of `flag`: the part after `=`, or the next word.
    pub fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, String> {
        match inline {
            Some(value) => Ok(value),
            None => self
                .words
                .pop_front()
                .ok_or_else(|| format!("{flag} needs a value")),
        }
    }
}

/// `[--json] [--kvm-device PATH]`, the flags of the commands that query the device (`caps`,
/// `cpuid`, `msrs`): whether JSON was asked for, and the device.
pub fn query_flags(
    command: &str,
    mut args: Args,
) -> Result<(bool, std::path::PathBuf), super::status::CliError> {
    use super::status::CliError;
    let mut json = false;
    let mut device = std::path::PathBuf::from(rawkvm::kvm::DEFAULT_DEVICE);
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Flag(flag, None) if flag == "--json" => json = true,
            Arg::Flag(flag, inline) if flag == "--kvm-device" => {
                device = args.value(&flag, inline).map_err(CliError::Usage)?.into();
            }
            other => return Err(super::unexpected(command, other)),
        }
    }
    Ok((json, device))
}

/// Parses `text` with `parse`, prefixing any error with the flag it came from.
pub fn parse_flag<T>(
    flag: &str,
    text: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    parse(text).map_err(|e| format!("{flag} {text}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Args {
        Args::new(words.iter().map(OsString::from).collect()).unwrap()
    }

    #[test]
    fn flags_values_and_positionals() {
        let mut a = args(&["hello", "--mem", "2M", "--entry=0:1000", "-h", "-"]);
        assert_eq!(a.next_arg(), Some(Arg::Positional("hello".into())));
        assert_eq!(a.next_arg(), Some(Arg::Flag("--mem".into(), None)));
        assert_eq!(a.value("--mem", None), Ok("2M".into()));
        let Some(Arg::Flag(name, inline)) = a.next_arg() else {
            panic!()
        };
        assert_eq!(
            (name.as_str(), a.value("--entry", inline)),
            ("--entry", Ok("0:1000".into()))
        );
        assert_eq!(a.next_arg(), Some(Arg::Flag("-h".into(), None)));
        assert_eq!(a.next_arg(), Some(Arg::Positional("-".into())));
        assert_eq!(a.next_arg(), None);
        assert_eq!(a.value("--mem", None), Err("--mem needs a value".into()));
        assert!(args(&["suite", "--help"]).asks_for_help());
        assert!(args(&["-h"]).asks_for_help());
        assert!(!args(&["--mem", "2M"]).asks_for_help());
    }
}
