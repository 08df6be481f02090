//! The write calls a process tree made to one file, read from an `strace` log (`-f -y -xx
//! -s N`: every buffer in full as `\xNN` escapes, every descriptor with its path).
//!
//! Followed: `openat`/`open` (a descriptor of the file starts at position 0), `lseek` (its
//! result is the new position), `write` (at the position, which advances), `pwrite64` (at its
//! offset), `close`. Positions are kept per process and descriptor. Any other call that could
//! write the file (`writev`, `pwritev`, `copy_file_range`, `sendfile`, `fallocate`, `mmap` of
//! it…) is traced too and refused: the replay would miss it.

use std::collections::HashMap;

use crate::{Result, bail};

/// One write call that reached the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// Byte offset in the file.
    pub offset: u64,
    /// The bytes the call wrote (its return value's worth).
    pub data: Vec<u8>,
}

/// The syscalls to trace (`-e trace=`): those followed, and those refused.
pub const TRACED: &str = "open,openat,lseek,write,pwrite64,close,writev,pwritev,pwritev2,\
                          copy_file_range,sendfile,splice,fallocate,ftruncate,mmap";

/// Calls that would change the file in a way the replay does not follow.
const REFUSED: [&str; 8] = [
    "writev",
    "pwritev",
    "pwritev2",
    "copy_file_range",
    "sendfile",
    "splice",
    "fallocate",
    "ftruncate",
];

/// One complete call of the log: pid, name, arguments text, result text.
struct Call<'a> {
    pid: u32,
    name: &'a str,
    args: String,
    result: String,
}

/// Joins `<unfinished ...>` / `<... NAME resumed>` halves and yields complete calls.
fn calls(log: &str) -> Result<Vec<Call<'_>>> {
    let mut pending: HashMap<u32, (&str, String)> = HashMap::new();
    let mut out = Vec::new();
    for line in log.lines() {
        let (pid, rest) = match line.split_once(' ') {
            Some((p, r)) if p.bytes().all(|b| b.is_ascii_digit()) && !p.is_empty() => {
                (p.parse::<u32>().unwrap_or(0), r.trim_start())
            }
            _ => (0, line),
        };
        if rest.starts_with("+++") || rest.starts_with("---") || rest.is_empty() {
            continue;
        }
        if let Some(r) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = r.split_once(" resumed>") else {
                bail!("strace log: cannot read `{}`", short(line));
            };
            let Some((first_name, head)) = pending.remove(&pid) else {
                bail!("strace log: a resumed {name} without its start (pid {pid})");
            };
            let whole = format!("{head}{tail}");
            let Some((args, result)) = whole.rsplit_once(") = ") else {
                // Killed inside the call (`) = ?`) or the like: no result.
                continue;
            };
            out.push(Call {
                pid,
                name: first_name,
                args: args.to_string(),
                result: result.to_string(),
            });
            continue;
        }
        let Some((name, after)) = rest.split_once('(') else {
            bail!("strace log: cannot read `{}`", short(line));
        };
        if let Some(head) = after.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, (name, head.to_string()));
            continue;
        }
        let Some((args, result)) = after.rsplit_once(") = ") else {
            continue; // `exit_group(0) = ?` and calls cut by a kill
        };
        out.push(Call {
            pid,
            name,
            args: args.to_string(),
            result: result.to_string(),
        });
    }
    Ok(out)
}

fn short(s: &str) -> &str {
    &s[..s.len().min(120)]
}

/// `FD<PATH>` at the start of `args`: the descriptor and its path (`-xx` escapes decoded),
/// and the rest after the comma.
fn fd_path(args: &str) -> Option<(i32, String, &str)> {
    let (fd, rest) = args.split_once('<')?;
    let fd = fd.trim().parse().ok()?;
    let (path, rest) = rest.split_once('>')?;
    Some((fd, unescape(path), rest.strip_prefix(", ").unwrap_or(rest)))
}

/// Decodes `\xNN` escapes (strace `-xx` prints paths that way too).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 4);
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1] == b'x'
            && let (Some(h), Some(l)) = (hex(b[i + 2]), hex(b[i + 3]))
        {
            out.push((h * 16 + l) as u8);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The bytes of a `"\xNN\xNN…"` string at the start of `s`, and what follows it.
fn hex_string(s: &str) -> Result<(Vec<u8>, &str)> {
    let Some(body) = s.strip_prefix('"') else {
        bail!("strace log: expected a string at `{}`", short(s));
    };
    let end = body.find('"').unwrap_or(body.len());
    let (esc, rest) = body.split_at(end);
    let b = esc.as_bytes();
    if b.len() % 4 != 0 {
        bail!("strace log: not an -xx string: `{}`", short(esc));
    }
    let mut out = Vec::with_capacity(b.len() / 4);
    for chunk in b.chunks(4) {
        let hex = |c: u8| (c as char).to_digit(16);
        match (chunk[0], chunk[1], hex(chunk[2]), hex(chunk[3])) {
            (b'\\', b'x', Some(h), Some(l)) => out.push((h * 16 + l) as u8),
            _ => bail!("strace log: not an -xx string: `{}`", short(esc)),
        }
    }
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    if rest.starts_with("...") {
        bail!("strace log: a buffer was cut (raise -s)");
    }
    Ok((out, rest.strip_prefix(", ").unwrap_or(rest)))
}

/// The write calls to `path` in `log`, in order.
pub fn writes(log: &str, path: &str) -> Result<Vec<Write>> {
    let mut pos: HashMap<(u32, i32), u64> = HashMap::new();
    let mut out = Vec::new();
    for c in calls(log)? {
        let result_num = c
            .result
            .split([' ', '<'])
            .next()
            .and_then(|r| r.parse::<i64>().ok());
        match c.name {
            "open" | "openat" => {
                // The result is annotated: `= 3</path>`.
                if let (Some(fd), Some((_, p, _))) = (result_num, fd_path(&c.result))
                    && p.as_str() == path
                {
                    pos.insert((c.pid, fd as i32), 0);
                }
            }
            "close" => {
                if let Some((fd, _, _)) = fd_path(&c.args) {
                    pos.remove(&(c.pid, fd));
                }
            }
            "mmap" => {
                if unescape(&c.args).contains(&format!("<{path}>")) && c.args.contains("PROT_WRITE")
                {
                    bail!("{path} was mapped writable: the replay cannot follow it");
                }
            }
            name => {
                let Some((fd, p, rest)) = fd_path(&c.args) else {
                    continue;
                };
                if p.as_str() != path {
                    continue;
                }
                if REFUSED.contains(&name) {
                    bail!("{path}: {name} is not followed by the replay");
                }
                let Some(n) = result_num.filter(|n| *n >= 0) else {
                    continue; // failed call: nothing written
                };
                match name {
                    "lseek" => {
                        pos.insert((c.pid, fd), n as u64);
                    }
                    "write" | "pwrite64" => {
                        let (mut data, rest) = hex_string(rest)?;
                        data.truncate(n as usize);
                        let offset = if name == "write" {
                            let Some(p) = pos.get_mut(&(c.pid, fd)) else {
                                bail!(
                                    "{path}: write on descriptor {fd} of pid {} whose position is unknown",
                                    c.pid
                                );
                            };
                            let at = *p;
                            *p += n as u64;
                            at
                        } else {
                            let Some(off) = rest
                                .rsplit(", ")
                                .next()
                                .and_then(|o| o.trim().parse::<u64>().ok())
                            else {
                                bail!("strace log: pwrite64 without an offset: `{}`", short(rest));
                            };
                            off
                        };
                        if n > 0 {
                            out.push(Write { offset, data });
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_positions_and_joins_resumed_calls() {
        let log = "\
100 openat(AT_FDCWD</w>, \"/d.img\", O_RDWR) = 3</d.img>
100 lseek(3</d.img>, 1024, SEEK_SET) = 1024
100 write(3</d.img>, \"\\x01\\x02\", 2 <unfinished ...>
101 write(1</dev/pts/0>, \"\\x41\", 1) = 1
100 <... write resumed>) = 2
100 write(3</d.img>, \"\\x03\", 1) = 1
100 pwrite64(3</d.img>, \"\\x04\\x05\", 2, 7) = 1
100 write(3</d.img>, \"\\x06\", 1) = -1 EIO (Input/output error)
100 close(3</d.img>) = 0
";
        let w = writes(log, "/d.img").unwrap();
        assert_eq!(
            w,
            vec![
                Write {
                    offset: 1024,
                    data: vec![1, 2]
                },
                Write {
                    offset: 1026,
                    data: vec![3]
                },
                Write {
                    offset: 7,
                    data: vec![4]
                },
            ]
        );
        let bad = "100 writev(3</d.img>, [], 0) = 0\n";
        assert!(writes(bad, "/d.img").is_err());
        let unknown = "100 write(4</d.img>, \"\\x01\", 1) = 1\n";
        assert!(writes(unknown, "/d.img").is_err());
    }
}
