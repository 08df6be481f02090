//! `text_format!`: the text build's form of a `boot_core::shim_log!` format string (issue 16).
//!
//! The shim's messages are written once, with defmt's typed parameters (`{=u32}`,
//! `{=u64:#x}`, `{=str}`, `{=istr}`), which put no type tag on the wire. `core::fmt` knows
//! neither, so for the text build this macro turns the literal into the `core::fmt` one:
//! `{=T}` becomes `{}`, `{=T:hint}` becomes `{:hint}`, `{}` and `{:hint}` stay, and every
//! line of the message gets the `shim: ` prefix (a frame may carry several lines).

use proc_macro::{Delimiter, Literal, TokenStream, TokenTree};

/// `text_format!("watchdog armed, {=u32} ms")` expands to the string literal
/// `"shim: watchdog armed, {} ms"`.
#[proc_macro]
pub fn text_format(input: TokenStream) -> TokenStream {
    match literal_of(input)
        .and_then(|lit| unquote(&lit))
        .map(|s| convert(&s))
    {
        Ok(Ok(text)) => TokenTree::Literal(Literal::string(&text)).into(),
        Ok(Err(e)) | Err(e) => format!("::core::compile_error!({:?});", e)
            .parse()
            .unwrap_or_default(),
    }
}

/// The one string literal of the input (macro_rules may wrap it in an invisible group).
fn literal_of(input: TokenStream) -> Result<String, String> {
    let mut tokens = input.into_iter();
    let first = tokens.next();
    if tokens.next().is_some() {
        return Err("text_format! takes one string literal".into());
    }
    match first {
        Some(TokenTree::Literal(l)) => Ok(l.to_string()),
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::None => literal_of(g.stream()),
        _ => Err("text_format! takes one string literal".into()),
    }
}

/// The value of a string literal's source text (`"..."` with escapes, or `r#"..."#`).
fn unquote(src: &str) -> Result<String, String> {
    if let Some(raw) = src.strip_prefix('r') {
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        let body = &raw[hashes..];
        return body
            .strip_prefix('"')
            .and_then(|b| b.strip_suffix(&format!("\"{}", "#".repeat(hashes))))
            .map(str::to_string)
            .ok_or_else(|| format!("not a string literal: {src}"));
    }
    let body = src
        .strip_prefix('"')
        .and_then(|b| b.strip_suffix('"'))
        .ok_or_else(|| format!("not a string literal: {src}"))?;
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some('\'') => out.push('\''),
            // A line continuation: the newline and the next line's leading whitespace go.
            Some('\n') | Some('\r') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(e) => return Err(format!("unsupported escape `\\{e}` in a log message")),
            None => return Err("a log message ends in `\\`".into()),
        }
    }
    Ok(out)
}

/// The `core::fmt` form with the `shim: ` prefix on every line.
fn convert(s: &str) -> Result<String, String> {
    let mut out = String::from("shim: ");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push_str("{{");
            }
            '{' => {
                let mut spec = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => spec.push(c),
                        None => return Err(format!("unclosed `{{` in log message {s:?}")),
                    }
                }
                let hint = match spec.strip_prefix('=') {
                    // `{=T}` / `{=T:hint}`: the type goes, the hint stays.
                    Some(typed) => typed.split_once(':').map(|(_, h)| h),
                    None => spec.strip_prefix(':'),
                };
                if spec.chars().next().is_some_and(|c| c != '=' && c != ':') {
                    return Err(format!(
                        "positional or named parameter `{{{spec}}}` in log message {s:?}: \
                         use `{{}}` or `{{=T}}`"
                    ));
                }
                match hint {
                    Some(h) => {
                        out.push_str("{:");
                        out.push_str(h);
                        out.push('}');
                    }
                    None => out.push_str("{}"),
                }
            }
            '\n' => out.push_str("\nshim: "),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{convert, unquote};

    #[test]
    fn typed_parameters_become_core_fmt_ones() {
        assert_eq!(
            convert("uSDHC{=u8}: {=istr} card, {=u64} blocks").unwrap(),
            "shim: uSDHC{}: {} card, {} blocks"
        );
        assert_eq!(
            convert("at {=u64:#x}: {} {:#x} {{literal}}").unwrap(),
            "shim: at {:#x}: {} {:#x} {{literal}}"
        );
    }

    #[test]
    fn every_line_gets_the_prefix() {
        assert_eq!(
            convert("a {=u32}\nb {=str}").unwrap(),
            "shim: a {}\nshim: b {}"
        );
    }

    #[test]
    fn positional_and_unclosed_parameters_are_refused() {
        assert!(convert("x {0}").is_err());
        assert!(convert("x {name}").is_err());
        assert!(convert("x {=u8").is_err());
    }

    #[test]
    fn literals_are_unescaped() {
        assert_eq!(unquote(r#""a\nb \"c\" \\""#).unwrap(), "a\nb \"c\" \\");
        assert_eq!(unquote("\"one \\\n     two\"").unwrap(), "one two");
        assert_eq!(unquote(r###"r#"raw {}"#"###).unwrap(), "raw {}");
        assert!(unquote(r#""\x41""#).is_err());
        assert!(unquote("42").is_err());
    }
}
