//! What the operator commands share: human tables (or JSON with `--json`), the confirmation
//! of destructive commands, and the audit actor.

use std::io::{BufRead, Write};

/// Output options of the operator commands.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct Format {
    /// Print JSON (one document per result) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Writes `rows` under `headers`, each column as wide as its widest cell.
pub fn table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Writes `key: value` lines, keys aligned.
pub fn fields(out: &mut dyn Write, pairs: &[(&str, String)]) -> std::io::Result<()> {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in pairs {
        writeln!(out, "{key:<width$}  {value}")?;
    }
    Ok(())
}

/// Asks on standard error whether to go on with `what`; true only when `yes` was given or
/// the first line of `input` is `yes`.
pub fn confirm(yes: bool, what: &str, input: &mut dyn BufRead) -> std::io::Result<bool> {
    if yes {
        return Ok(true);
    }
    eprint!("{what}\nType yes to go on: ");
    let mut answer = String::new();
    input.read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// The audit actor of the CLI: `haven-admin:$USER`.
pub fn actor() -> String {
    format!(
        "haven-admin:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// `-` for an absent value.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}
