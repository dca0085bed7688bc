//! Build script: turns every guest in `asm-guests/` into an image and generates
//! `OUT_DIR/guests.rs`, the table that `src/machine/guests.rs` includes.
//!
//! For each guest `DIR/NAME.S` (the folder gives the CPU mode and the tools):
//!
//! | folder | mode | assembled, linked |
//! |---|---|---|
//! | `asm-guests/` | real (16-bit; may switch modes itself) | `as --32`, `ld -m elf_i386 -T guest.ld` |
//! | `asm-guests/protected/` | 32-bit protected | `as --32`, `ld -m elf_i386 -T guest.ld` |
//! | `asm-guests/long/`, `user/` | 64-bit, CPL 0 / CPL 3 | `as --64`, `ld -m elf_x86_64 -T guest64.ld` |
//! | `asm-guests/c/` | `NAME.S` (start, header) + `NAME.c` | `gcc -m64 -ffreestanding -nostdlib -static -fno-pic -T c/guest_c.ld` |
//!
//! 1. `as --32|--64 --fatal-warnings -I asm-guests -o OUT_DIR/NAME.o DIR/NAME.S`
//! 2. `ld -m elf_i386|elf_x86_64 -T LINKER_SCRIPT -o OUT_DIR/NAME.elf OUT_DIR/NAME.o`
//! 3. `objcopy -O binary OUT_DIR/NAME.elf OUT_DIR/NAME.bin`
//!
//! A C guest stays an ELF executable (embedded as such: rawkvm loads its `PT_LOAD` segments
//! like any `--image` ELF). The exception stub of long and user mode,
//! `asm-guests/stubs/exception_stub.S`, is built the same way into `OUT_DIR/exception_stub.bin`
//! (linked at its address in the system area by `stubs/stub.ld`), and is not a guest.
//!
//! The tools are GNU binutils and GCC; `AS`, `LD`, `OBJCOPY` and `CC` in the environment
//! replace them. The header comment at the top of each guest (format in `asm-guests/README.md`)
//! gives its name, description, setup and exits; this script checks it (a guest outside the
//! top folder must say `mode=FOLDER` in its setup, `c/` guests `mode=user` or `mode=long`) and
//! copies it into the table.
//!
//! Only `std` is used: no build dependencies.

use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Folder of the guest sources, relative to the package root.
const GUEST_DIR: &str = "asm-guests";
/// Linker script inside [`GUEST_DIR`].
const LINKER_SCRIPT: &str = "guest.ld";
/// First line of every guest header, followed by the guest's name.
const NAME_TAG: &str = "rawkvm guest:";
/// Header line that gives the setup, followed by the items.
const SETUP_TAG: &str = "setup:";
/// Header line that opens the list of exits.
const EXITS_TAG: &str = "Exits";
/// Prefix of each line of the list of exits (stripped).
const EXIT_LINE_PREFIX: &str = "#   ";
/// Largest image: real mode at CS=0 reaches offsets up to 0xFFFF, and the image starts at 0x1000.
const MAX_IMAGE_LEN: usize = 0x1_0000 - 0x1000;
/// Setup keys the VMM understands, and whether each takes a `=value`.
const SETUP_KEYS: &[(&str, bool)] = &[
    ("mem", true),
    ("readonly", true),
    ("param", true),
    ("user-msr", false),
    ("vcpus", true),
    ("irq", true),
    ("mode", true),
    ("irqchip", true),
];

/// One GNU binutils program, with the environment variable that overrides it.
struct Tool {
    /// Default program name, looked up in `PATH`.
    default: &'static str,
    /// Environment variable holding another program to use instead.
    env_var: &'static str,
    /// What the program is, for error messages.
    what: &'static str,
}

const AS: Tool = Tool {
    default: "as",
    env_var: "AS",
    what: "the GNU assembler",
};
const LD: Tool = Tool {
    default: "ld",
    env_var: "LD",
    what: "the GNU linker",
};
const OBJCOPY: Tool = Tool {
    default: "objcopy",
    env_var: "OBJCOPY",
    what: "GNU objcopy",
};
const CC: Tool = Tool {
    default: "gcc",
    env_var: "CC",
    what: "the GNU C compiler",
};

/// How the guests of one folder are built.
struct Folder {
    /// The folder inside [`GUEST_DIR`] (`""`: the top one).
    dir: &'static str,
    /// The `mode=` their setup must name (`None`: real mode, no `mode=` allowed).
    modes: &'static [&'static str],
    /// `as --32` or `as --64`.
    as_flag: &'static str,
    /// `ld -m ...`.
    emulation: &'static str,
    /// Linker script inside [`GUEST_DIR`].
    script: &'static str,
    /// Compiled from `NAME.S` + `NAME.c` with [`CC`] into an ELF executable.
    c: bool,
}

const FOLDERS: &[Folder] = &[
    Folder {
        dir: "",
        modes: &[],
        as_flag: "--32",
        emulation: "elf_i386",
        script: LINKER_SCRIPT,
        c: false,
    },
    Folder {
        dir: "protected",
        modes: &["protected"],
        as_flag: "--32",
        emulation: "elf_i386",
        script: LINKER_SCRIPT,
        c: false,
    },
    Folder {
        dir: "long",
        modes: &["long"],
        as_flag: "--64",
        emulation: "elf_x86_64",
        script: "guest64.ld",
        c: false,
    },
    Folder {
        dir: "user",
        modes: &["user"],
        as_flag: "--64",
        emulation: "elf_x86_64",
        script: "guest64.ld",
        c: false,
    },
    Folder {
        dir: "c",
        modes: &["user", "long"],
        as_flag: "--64",
        emulation: "elf_x86_64",
        script: "c/guest_c.ld",
        c: true,
    },
];

/// The exception stub: source and linker script inside [`GUEST_DIR`], and the image's name.
const STUB_SOURCE: &str = "stubs/exception_stub.S";
const STUB_SCRIPT: &str = "stubs/stub.ld";
const STUB_IMAGE: &str = "exception_stub.bin";

/// What the header comment of one guest says.
#[derive(Debug, PartialEq)]
struct Header {
    name: String,
    description: String,
    setup: String,
    exits: String,
}

/// One guest, built.
struct Built {
    header: Header,
    image: PathBuf,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: building the rawkvm guests failed: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let root = PathBuf::from(env_var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env_var("OUT_DIR")?);
    let guest_dir = root.join(GUEST_DIR);

    // Cargo scans a directory given here for any change inside it: an edited, added or removed
    // guest, include file or linker script.
    println!("cargo:rerun-if-changed={}", guest_dir.display());
    for tool in [&AS, &LD, &OBJCOPY, &CC] {
        println!("cargo:rerun-if-env-changed={}", tool.env_var);
    }

    // The guests are x86 real-mode code: a build for another architecture embeds none (and
    // needs no x86 assembler), and says so.
    if env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch != "x86_64") {
        let table = out_dir.join("guests.rs");
        return fs::write(&table, render_table(&[])?)
            .map_err(|e| format!("cannot write {}: {e}", table.display()));
    }

    let mut built = Vec::new();
    for folder in FOLDERS {
        for source in sources_in(&guest_dir.join(folder.dir))? {
            built.push(build_guest(&source, folder, &guest_dir, &out_dir)?);
        }
    }
    if built.is_empty() {
        return Err(format!("no guest sources (*.S) in {}", guest_dir.display()));
    }
    built.sort_by(|a, b| a.header.name.cmp(&b.header.name));
    if let Some(pair) = built
        .windows(2)
        .find(|pair| pair[0].header.name == pair[1].header.name)
    {
        return Err(format!(
            "two guests are called {:?}; names must be unique across the folders",
            pair[0].header.name
        ));
    }
    build_stub(&guest_dir, &out_dir)?;

    let table = out_dir.join("guests.rs");
    fs::write(&table, render_table(&built)?)
        .map_err(|e| format!("cannot write {}: {e}", table.display()))
}

/// Reads an environment variable that Cargo always sets for build scripts.
fn env_var(name: &str) -> Result<OsString, String> {
    env::var_os(name).ok_or_else(|| format!("{name} is not set (is this run by Cargo?)"))
}

/// The `*.S` files directly inside `dir`, sorted (none if `dir` does not exist).
fn sources_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let mut sources = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .path();
        if path.extension().is_some_and(|ext| ext == "S") {
            sources.push(path);
        }
    }
    sources.sort();
    Ok(sources)
}

/// Checks the header of `source`, then builds it as its folder says: a flat `NAME.bin`, or
/// for a C guest an ELF executable `NAME.elf`.
fn build_guest(
    source: &Path,
    folder: &Folder,
    guest_dir: &Path,
    out_dir: &Path,
) -> Result<Built, String> {
    let text =
        fs::read_to_string(source).map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let header = parse_header(&text).map_err(|e| format!("{}: {e}", source.display()))?;
    let stem = source
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    if header.name != stem {
        return Err(format!(
            "{}: the header names the guest {:?}, but the file is {stem:?}.S; they must match",
            source.display(),
            header.name
        ));
    }
    check_mode(&header.setup, folder).map_err(|e| format!("{}: {e}", source.display()))?;

    let image = if folder.c {
        compile_c(source, stem, guest_dir, out_dir)?
    } else {
        let script = guest_dir.join(folder.script);
        assemble_flat(source, stem, folder, &script, guest_dir, out_dir)?
    };
    let len = fs::metadata(&image)
        .map_err(|e| format!("cannot stat {}: {e}", image.display()))?
        .len();
    if len == 0 {
        return Err(format!(
            "{}: the image {} is empty",
            source.display(),
            image.display()
        ));
    }
    if len > MAX_IMAGE_LEN as u64 {
        return Err(format!(
            "{}: the image is {len} bytes; at most {MAX_IMAGE_LEN} fit between GPA 0x1000 and \
             0xFFFF",
            source.display()
        ));
    }
    Ok(Built { header, image })
}

/// A guest outside the top folder names its folder's mode in its setup; one in the top folder
/// names none (it starts in real mode, whatever it switches to).
fn check_mode(setup: &str, folder: &Folder) -> Result<(), String> {
    let mode = setup
        .split_whitespace()
        .find_map(|item| item.strip_prefix("mode="));
    match (mode, folder.modes) {
        (None, []) => Ok(()),
        (Some(mode), []) => Err(format!(
            "`mode={mode}` in a guest of the top folder, which starts in real mode; move it to \
             asm-guests/{mode}/"
        )),
        (Some(mode), modes) if modes.contains(&mode) => Ok(()),
        (_, modes) => Err(format!(
            "a guest in asm-guests/{}/ needs `# setup: mode=...` with one of {modes:?}",
            folder.dir
        )),
    }
}

/// `as`, `ld -T script`, `objcopy -O binary`: the flat image `OUT_DIR/STEM.bin`.
fn assemble_flat(
    source: &Path,
    stem: &str,
    folder: &Folder,
    script: &Path,
    guest_dir: &Path,
    out_dir: &Path,
) -> Result<PathBuf, String> {
    let object = out_dir.join(format!("{stem}.o"));
    let elf = out_dir.join(format!("{stem}.elf"));
    let image = out_dir.join(format!("{stem}.bin"));

    let mut assemble = tool_command(&AS);
    assemble
        .args([folder.as_flag, "--fatal-warnings", "-I"])
        .arg(guest_dir);
    assemble.arg("-o").arg(&object).arg(source);
    run_tool(&AS, assemble)?;

    let mut link = tool_command(&LD);
    link.args(["-m", folder.emulation, "-T"]).arg(script);
    link.arg("-o").arg(&elf).arg(&object);
    run_tool(&LD, link)?;

    let mut flatten = tool_command(&OBJCOPY);
    flatten.args(["-O", "binary"]).arg(&elf).arg(&image);
    run_tool(&OBJCOPY, flatten)?;
    Ok(image)
}

/// `gcc` of `STEM.S` (the start code and header) and `STEM.c` into the static ELF executable
/// `OUT_DIR/STEM.elf`, stripped.
fn compile_c(
    source: &Path,
    stem: &str,
    guest_dir: &Path,
    out_dir: &Path,
) -> Result<PathBuf, String> {
    let c_source = source.with_extension("c");
    let elf = out_dir.join(format!("{stem}.elf"));
    let mut compile = tool_command(&CC);
    compile.args([
        "-m64",
        "-ffreestanding",
        "-nostdlib",
        "-static",
        "-fno-pic",
        "-no-pie",
        "-O2",
        "-Wall",
        "-Werror",
        "-fno-stack-protector",
        "-fno-asynchronous-unwind-tables",
        "-mno-red-zone",
        "-s",
        "-Wl,--build-id=none",
        "-I",
    ]);
    compile
        .arg(guest_dir)
        .arg("-T")
        .arg(guest_dir.join("c/guest_c.ld"));
    compile.arg("-o").arg(&elf).arg(source).arg(&c_source);
    run_tool(&CC, compile)?;
    Ok(elf)
}

/// The exception stub of long and user mode: `OUT_DIR/exception_stub.bin`.
fn build_stub(guest_dir: &Path, out_dir: &Path) -> Result<(), String> {
    // Built like a long-mode guest: `as --64`, `ld -m elf_x86_64`.
    let folder = &FOLDERS[2];
    let source = guest_dir.join(STUB_SOURCE);
    let image = assemble_flat(
        &source,
        "exception_stub",
        folder,
        &guest_dir.join(STUB_SCRIPT),
        guest_dir,
        out_dir,
    )?;
    debug_assert!(image.ends_with(STUB_IMAGE));
    Ok(())
}

/// The command for `tool`: the program named by its environment variable, or its default.
fn tool_command(tool: &Tool) -> Command {
    Command::new(program(tool))
}

/// The program to run for `tool`.
fn program(tool: &Tool) -> OsString {
    env::var_os(tool.env_var)
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| tool.default.into())
}

/// Runs one tool to completion; on failure the error shows the command and the tool's stderr.
/// Warnings of a tool that succeeded are passed on as Cargo warnings.
fn run_tool(tool: &Tool, mut command: Command) -> Result<(), String> {
    let shown = show_command(&command);
    let output = command.output().map_err(|e| {
        if e.kind() == ErrorKind::NotFound {
            format!(
                "{} `{}` was not found (set {} to use another program). Install GNU binutils: \
                 package `binutils` (Debian/Ubuntu: apt-get install binutils).\n  command: {shown}",
                tool.what,
                program(tool).to_string_lossy(),
                tool.env_var
            )
        } else {
            format!("cannot run {}: {e}\n  command: {shown}", tool.what)
        }
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "{} failed ({})\n  command: {shown}\n{}",
            tool.what,
            output.status,
            stderr.trim_end()
        ));
    }
    for line in stderr.lines().filter(|line| !line.trim().is_empty()) {
        println!("cargo:warning={}: {line}", tool.default);
    }
    Ok(())
}

/// The command as one line, for messages.
fn show_command(command: &Command) -> String {
    let mut line = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// Parses the header comment at the top of a guest source.
///
/// ```text
/// # rawkvm guest: NAME
/// # One line that says what the guest does.
/// # setup: key=value key        (optional)
/// #
/// # Exits, in order:
/// #   first exit
/// #   ...
/// ```
///
/// The header is the run of `#` lines at the top of the file. The exits are the lines right
/// after the `# Exits` line that start with `#   `, with that prefix stripped.
fn parse_header(text: &str) -> Result<Header, String> {
    let lines: Vec<&str> = text
        .lines()
        .take_while(|line| line.starts_with('#'))
        .collect();
    let comment = |line: &str| line.trim_start_matches('#').trim().to_owned();

    let first = lines.first().map(|line| comment(line)).unwrap_or_default();
    let name = first
        .strip_prefix(NAME_TAG)
        .map(str::trim)
        .ok_or_else(|| format!("the first line must be `# {NAME_TAG} NAME`"))?
        .to_owned();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!(
            "guest name {name:?}: use lower-case letters, digits and `_`"
        ));
    }

    let description = lines.get(1).map(|line| comment(line)).unwrap_or_default();
    if description.is_empty()
        || description.starts_with(SETUP_TAG)
        || description.starts_with(EXITS_TAG)
    {
        return Err("the second line must be a one-line description of the guest".to_owned());
    }

    let mut setup = None;
    let mut exits = None;
    for (index, line) in lines.iter().enumerate().skip(2) {
        let text = comment(line);
        if let Some(value) = text.strip_prefix(SETUP_TAG) {
            if setup.is_some() {
                return Err("more than one `# setup:` line".to_owned());
            }
            setup = Some(check_setup(value.trim())?);
        } else if text.starts_with(EXITS_TAG) && exits.is_none() {
            let list: Vec<&str> = lines[index + 1..]
                .iter()
                .map_while(|line| line.strip_prefix(EXIT_LINE_PREFIX))
                .map(str::trim_end)
                .collect();
            if list.is_empty() || list.iter().any(|line| line.trim().is_empty()) {
                return Err(format!(
                    "the `# {EXITS_TAG}` line must be followed by the exits, one per line, \
                     each starting with {EXIT_LINE_PREFIX:?}"
                ));
            }
            exits = Some(list.join("\n"));
        }
    }
    let exits = exits.ok_or_else(|| format!("no `# {EXITS_TAG}, in order:` section"))?;
    Ok(Header {
        name,
        description,
        setup: setup.unwrap_or_default(),
        exits,
    })
}

/// Checks that every setup item is a known key, with a value exactly when the key takes one.
fn check_setup(setup: &str) -> Result<String, String> {
    for item in setup.split_whitespace() {
        let (key, value) = match item.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (item, None),
        };
        let Some(&(_, takes_value)) = SETUP_KEYS.iter().find(|(known, _)| *known == key) else {
            let known: Vec<&str> = SETUP_KEYS.iter().map(|(known, _)| *known).collect();
            return Err(format!(
                "unknown setup key {key:?} (known: {})",
                known.join(", ")
            ));
        };
        match value {
            Some("") | None if takes_value => {
                return Err(format!("setup key {key:?} needs a value: {key}=..."));
            }
            Some(_) if !takes_value => return Err(format!("setup key {key:?} takes no value")),
            _ => {}
        }
    }
    Ok(setup.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Renders `guests.rs`: the `EMBEDDED` table, one `Guest` per built guest, sorted by name.
fn render_table(built: &[Built]) -> Result<String, String> {
    let mut out = String::new();
    out.push_str("// Generated by build.rs from asm-guests/*.S. Do not edit.\n\n");
    out.push_str("/// Every guest built from `asm-guests/`, sorted by name.\n");
    out.push_str("pub static EMBEDDED: &[Guest] = &[\n");
    for guest in built {
        let image = guest.image.to_str().ok_or_else(|| {
            format!(
                "the path {} is not UTF-8; include_bytes! needs UTF-8",
                guest.image.display()
            )
        })?;
        let Header {
            name,
            description,
            setup,
            exits,
        } = &guest.header;
        // `{:?}` of a `str` is a valid Rust string literal (quotes and escapes included).
        let _ = write!(
            out,
            "    Guest {{\n        name: {name:?},\n        description: {description:?},\n        \
             exits: {exits:?},\n        setup: {setup:?},\n        image: include_bytes!({image:?}),\n    \
             }},\n"
        );
    }
    out.push_str("];\n");
    Ok(out)
}
