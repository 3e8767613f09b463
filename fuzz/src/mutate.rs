//! Mutations of an input: byte-level (flips, interesting bytes, deletions, duplications,
//! insertions, splices with another corpus entry) and, for text, number-level (a number swapped
//! for one at the edge of what a loader accepts), which reaches validation code that byte
//! noise mostly does not.

use haca_policy::Rng;

/// Numbers at the edges: zero, signs, the smallest and largest floats, integer limits, NaN.
const EDGE_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1e-300",
    "-1e-300",
    "1e300",
    "1e308",
    "2e308",
    "nan",
    "inf",
    "-inf",
    "255",
    "256",
    "65535",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e9",
    "1e-9",
    "0.001",
    "3.0",
    "100000000",
];

const EDGE_BYTES: &[u8] = b"\0\x01\x7f\x80\xff0123456789-+.eE,=\"[]{}\n #";

/// One to four mutations of `input`; `other` is another corpus entry to splice from.
pub fn mutate(input: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            0 | 1 => edge_number(&mut out, rng),
            2 => flip_bit(&mut out, rng),
            3 => set_byte(&mut out, rng),
            4 => delete(&mut out, rng),
            5 => duplicate(&mut out, rng),
            6 => insert(&mut out, rng),
            _ => splice(&mut out, other, rng),
        }
    }
    out
}

fn pos(len: usize, rng: &mut Rng) -> usize {
    if len == 0 {
        0
    } else {
        rng.below(len as u64) as usize
    }
}

fn flip_bit(b: &mut [u8], rng: &mut Rng) {
    if !b.is_empty() {
        let i = pos(b.len(), rng);
        b[i] ^= 1 << rng.below(8);
    }
}

fn set_byte(b: &mut [u8], rng: &mut Rng) {
    if !b.is_empty() {
        let i = pos(b.len(), rng);
        b[i] = EDGE_BYTES[pos(EDGE_BYTES.len(), rng)];
    }
}

fn span(len: usize, rng: &mut Rng) -> (usize, usize) {
    let start = pos(len, rng);
    let max = (len - start).min(64);
    let n = if max == 0 { 0 } else { 1 + pos(max, rng) };
    (start, start + n)
}

fn delete(b: &mut Vec<u8>, rng: &mut Rng) {
    let (s, e) = span(b.len(), rng);
    b.drain(s..e);
}

fn duplicate(b: &mut Vec<u8>, rng: &mut Rng) {
    let (s, e) = span(b.len(), rng);
    let piece: Vec<u8> = b[s..e].to_vec();
    let at = pos(b.len() + 1, rng);
    b.splice(at..at, piece);
}

fn insert(b: &mut Vec<u8>, rng: &mut Rng) {
    let at = pos(b.len() + 1, rng);
    let n = 1 + rng.below(8) as usize;
    let bytes: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
    b.splice(at..at, bytes);
}

fn splice(b: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    if other.is_empty() {
        return;
    }
    let (s, e) = span(other.len(), rng);
    let at = pos(b.len() + 1, rng);
    let end = (at + (e - s)).min(b.len());
    b.splice(at..end, other[s..e].iter().copied());
}

/// Replaces one number of the text (a run of digits, with its sign, point and exponent) by an
/// edge number.
fn edge_number(b: &mut Vec<u8>, rng: &mut Rng) {
    let numbers = number_spans(b);
    if numbers.is_empty() {
        return flip_bit(b, rng);
    }
    let (s, e) = numbers[pos(numbers.len(), rng)];
    let edge = EDGE_NUMBERS[pos(EDGE_NUMBERS.len(), rng)].as_bytes();
    b.splice(s..e, edge.iter().copied());
}

fn number_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let mut s = i;
            if s > 0 && b[s - 1] == b'-' {
                s -= 1;
            }
            while i < b.len() && (b[i].is_ascii_digit() || b"._eE+-".contains(&b[i])) {
                i += 1;
            }
            spans.push((s, i));
        } else {
            i += 1;
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_found_with_sign_point_and_exponent() {
        let t = b"a = -1.5e3\nb = 7, c = x2";
        let spans: Vec<&[u8]> = number_spans(t).iter().map(|&(s, e)| &t[s..e]).collect();
        assert_eq!(spans, [&b"-1.5e3"[..], b"7", b"2"]);
    }

    #[test]
    fn mutations_change_the_input_and_are_seeded() {
        let input = b"jobs = 2000\nspeed = 0.4\n".to_vec();
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        let outs: Vec<Vec<u8>> = (0..50).map(|_| mutate(&input, b"x = 1", &mut a)).collect();
        let again: Vec<Vec<u8>> = (0..50).map(|_| mutate(&input, b"x = 1", &mut b)).collect();
        assert_eq!(outs, again);
        assert!(outs.iter().filter(|o| **o != input).count() > 40);
    }
}
