//! CPU sets in the kernel's two spellings: lists (`0-3,8,10-11`) and hex masks (`ff,0000000f`).

use std::collections::BTreeSet;

/// A set of CPU ids.
pub type CpuSet = BTreeSet<usize>;

/// Parses a CPU list (`0-3,8`); empty text is the empty set. `None` if malformed.
pub fn parse_list(text: &str) -> Option<CpuSet> {
    let mut set = CpuSet::new();
    for part in text.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
        // `0-7:2/4` (stride groups) exists too; sable's fixtures and hosts use plain ranges.
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(part.parse().ok()?);
            }
        }
    }
    Some(set)
}

/// Parses a hex CPU mask (`ff`, `00000000,00000003`: 32-bit words, most significant first).
pub fn parse_mask(text: &str) -> Option<CpuSet> {
    let digits: String = text.trim().chars().filter(|c| *c != ',').collect();
    let mut set = CpuSet::new();
    for (i, c) in digits.chars().rev().enumerate() {
        let v = c.to_digit(16)? as usize;
        for bit in 0..4 {
            if v & (1 << bit) != 0 {
                set.insert(i * 4 + bit);
            }
        }
    }
    Some(set)
}

/// Formats a set as a CPU list (`0-3,8`).
pub fn format_list(set: &CpuSet) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().expect("peeked");
        }
        out.push(if start == end { start.to_string() } else { format!("{start}-{end}") });
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_masks_and_back() {
        let s = parse_list("0-3, 8,10-11").unwrap();
        assert_eq!(format_list(&s), "0-3,8,10-11");
        assert_eq!(parse_list("").unwrap().len(), 0);
        assert!(parse_list("3-1").is_none());
        assert!(parse_list("a").is_none());
        assert_eq!(format_list(&parse_mask("00000000,0000000d").unwrap()), "0,2-3");
        assert_eq!(format_list(&parse_mask("1,00000000").unwrap()), "32");
    }
}
