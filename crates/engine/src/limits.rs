//! Limits checked before anything large is allocated: a model, a batch or a data set that would need more memory
//! than the budget is refused with a message naming the part and its size, instead of an allocation failure that
//! aborts the process (and, in `approxlab serve`, every other run with it).
//!
//! The budget is process-wide: by default three quarters of the machine's memory (`MemTotal` in `/proc/meminfo`;
//! 16 GiB where that cannot be read), or what [`set_memory_budget`] says (`--max-memory`).

use crate::error::{EngineError, Result};
use std::sync::atomic::{AtomicU64, Ordering};

/// 0: not set, use the default.
static BUDGET: AtomicU64 = AtomicU64::new(0);

/// The machine's memory in bytes, when the system says.
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory budget in bytes.
pub fn memory_budget() -> u64 {
    match BUDGET.load(Ordering::Relaxed) {
        0 => machine_memory().map_or(16 << 30, |m| m / 4 * 3),
        b => b,
    }
}

/// Sets the budget (`--max-memory`); 0 goes back to the default.
pub fn set_memory_budget(bytes: u64) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// `bytes` in the largest unit that keeps a number of at least 1: "1.5 TB", "640 MB", "12 KB".
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KB", "MB", "GB", "TB", "PB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} bytes")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// Parses a size such as `8G`, `512M`, `1.5T`, `100000K` or a plain number of bytes (powers of 1024).
pub fn parse_memory(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0f64.powi(4),
        _ => return Err(format!("'{text}': expected a size such as 8G, 512M or a number of bytes")),
    };
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e19 => Ok((v * scale) as u64),
        _ => Err(format!("'{text}': expected a positive size such as 8G, 512M or a number of bytes")),
    }
}

/// Refuses `bytes` for `what` (e.g. "batch 1000000000 needs ... of training buffers") when they exceed the budget.
/// `what` describes the part; the message adds its size and the budget.
pub fn check_memory(part: &str, bytes: f64) -> Result<()> {
    let budget = memory_budget();
    if bytes.is_finite() && bytes <= budget as f64 {
        return Ok(());
    }
    let machine = machine_memory().map(|m| format!("; this machine has {}", human_bytes(m as f64))).unwrap_or_default();
    Err(EngineError::Limit(format!(
        "{part} needs {} of memory, more than the limit of {}{machine} (set --max-memory to change the limit)",
        human_bytes(bytes),
        human_bytes(budget as f64)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_and_parse() {
        assert_eq!(human_bytes(1.536e12), "1.5 TB");
        assert_eq!(human_bytes(640e6), "640 MB");
        assert_eq!(human_bytes(12.0), "12 bytes");
        assert_eq!(parse_memory("8G"), Ok(8 << 30));
        assert_eq!(parse_memory("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_memory("1.5T"), Ok((1.5 * 1024f64.powi(4)) as u64));
        assert_eq!(parse_memory("4096"), Ok(4096));
        for bad in ["", "G", "-1G", "8Q", "0", "1e30"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_part_over_the_budget_is_refused_with_its_size() {
        assert!(check_memory("a small part", 1e6).is_ok());
        let e = check_memory("batch 1000000000", 1.5e12).unwrap_err().to_string();
        assert!(e.contains("batch 1000000000 needs 1.5 TB") && e.contains("--max-memory"), "{e}");
        assert!(check_memory("anything", f64::INFINITY).is_err());
    }
}
