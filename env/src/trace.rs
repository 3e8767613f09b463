//! Request traces in CSV: `arrival_s,input_tokens,output_tokens[,extra columns]`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// A loaded, validated trace. Columns are stored separately so replay reads them sequentially.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub path: PathBuf,
    /// Seconds since the first request, non-decreasing, starting at the first row's value.
    pub arrival_s: Vec<f64>,
    pub input_tokens: Vec<u32>,
    pub output_tokens: Vec<u32>,
    /// Prefix block hashes from a `hash_ids` column (space-separated integers, one block per
    /// `[prefix] block_tokens` tokens): request `i`'s are `blocks[block_off[i]..block_off[i +
    /// 1]]`. Empty (and `block_off` empty) when the trace has no such column.
    pub blocks: Vec<u64>,
    pub block_off: Vec<u32>,
}

/// Why a trace could not be loaded; `line` is 1-based, as an editor shows it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct TraceError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

const HEADER: [&str; 3] = ["arrival_s", "input_tokens", "output_tokens"];

/// A trace is read whole into memory: 1 GiB of CSV is about 40 M requests, far above what an
/// episode replays (`crate::scenario::MAX_JOBS_PER_EPISODE`).
pub const MAX_TRACE_BYTES: u64 = 1 << 30;

impl Trace {
    pub fn load(path: &Path) -> Result<Trace, TraceError> {
        let err = |line: Option<usize>, message: String| TraceError {
            path: path.to_path_buf(),
            line,
            message,
        };
        let cannot = |e: std::io::Error| {
            err(
                None,
                format!("cannot read the trace: {e} (paths in a scenario are relative to the scenario file)"),
            )
        };
        // Read through a limit, not by the size the file claims: a pipe or a device has none.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_TRACE_BYTES + 1).read_to_end(&mut bytes))
            .map_err(cannot)?;
        if bytes.len() as u64 > MAX_TRACE_BYTES {
            return Err(err(
                None,
                format!("the trace is over the {MAX_TRACE_BYTES}-byte limit: cut it to the requests an episode replays"),
            ));
        }
        let text = String::from_utf8(bytes)
            .map_err(|e| err(None, format!("the trace is not UTF-8 text: {e}")))?;
        Trace::parse(&text, path).map_err(|(line, message)| err(line, message))
    }

    /// Parses CSV text; errors carry the 1-based line number.
    pub fn parse(text: &str, path: &Path) -> Result<Trace, (Option<usize>, String)> {
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l.trim_end_matches('\r')).ok_or((
            None,
            "the trace is empty: expected a header `arrival_s,input_tokens,output_tokens`"
                .to_string(),
        ))?;
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        if cols.len() < 3 || cols[..3] != HEADER {
            return Err((
                Some(1),
                format!(
                    "header is `{header}`: the first three columns must be `arrival_s,input_tokens,output_tokens`"
                ),
            ));
        }
        let mut trace = Trace {
            path: path.to_path_buf(),
            arrival_s: Vec::new(),
            input_tokens: Vec::new(),
            output_tokens: Vec::new(),
            blocks: Vec::new(),
            block_off: Vec::new(),
        };
        let hash_col = cols.iter().position(|&c| c == "hash_ids");
        if hash_col.is_some() {
            trace.block_off.push(0);
        }
        for (i, line) in lines {
            let line_no = i + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split(',');
            let mut field = |name: &str| {
                fields
                    .next()
                    .map(str::trim)
                    .ok_or((Some(line_no), format!("missing column `{name}`")))
            };
            let (a, inp, out) = (field(HEADER[0])?, field(HEADER[1])?, field(HEADER[2])?);
            let t: f64 = a
                .parse()
                .ok()
                .filter(|t: &f64| t.is_finite() && *t >= 0.0)
                .ok_or((
                    Some(line_no),
                    format!("`arrival_s` is `{a}`: expected a non-negative number of seconds"),
                ))?;
            if let Some(&prev) = trace.arrival_s.last() {
                if t < prev {
                    return Err((
                        Some(line_no),
                        format!("`arrival_s` goes back in time ({t} after {prev}): sort the trace by arrival time"),
                    ));
                }
            }
            let tokens = |name: &str, v: &str| {
                v.parse::<u32>().map_err(|_| {
                    (
                        Some(line_no),
                        format!("`{name}` is `{v}`: expected a non-negative integer"),
                    )
                })
            };
            let inp = tokens(HEADER[1], inp)?;
            let out = tokens(HEADER[2], out)?;
            if inp == 0 && out == 0 {
                return Err((
                    Some(line_no),
                    "a request with zero input and zero output tokens has no work".into(),
                ));
            }
            if let Some(col) = hash_col {
                let cell = line.split(',').nth(col).unwrap_or("").trim();
                for h in cell.split_whitespace() {
                    let v = h.parse::<u64>().map_err(|_| {
                        (
                            Some(line_no),
                            format!("`hash_ids` holds `{h}`: expected space-separated non-negative integers"),
                        )
                    })?;
                    trace.blocks.push(v);
                }
                if trace.blocks.len() > u32::MAX as usize {
                    return Err((Some(line_no), "more than 2^32 prefix blocks in all".into()));
                }
                trace.block_off.push(trace.blocks.len() as u32);
            }
            trace.arrival_s.push(t);
            trace.input_tokens.push(inp);
            trace.output_tokens.push(out);
        }
        if trace.arrival_s.is_empty() {
            return Err((None, "the trace has a header but no requests".into()));
        }
        Ok(trace)
    }

    pub fn len(&self) -> usize {
        self.arrival_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arrival_s.is_empty()
    }

    /// Request `i`'s prefix block hashes (empty without a `hash_ids` column).
    pub fn blocks_of(&self, i: usize) -> &[u64] {
        match (self.block_off.get(i), self.block_off.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.blocks[a as usize..b as usize],
            _ => &[],
        }
    }

    pub fn span_s(&self) -> f64 {
        self.arrival_s[self.len() - 1] - self.arrival_s[0]
    }

    pub fn mean_input(&self) -> f64 {
        self.input_tokens.iter().map(|&x| x as f64).sum::<f64>() / self.len() as f64
    }

    pub fn mean_output(&self) -> f64 {
        self.output_tokens.iter().map(|&x| x as f64).sum::<f64>() / self.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Trace, (Option<usize>, String)> {
        Trace::parse(text, Path::new("t.csv"))
    }

    #[test]
    fn parses_rows_and_ignores_extra_columns() {
        let t = parse("arrival_s,input_tokens,output_tokens,hash_ids\n0,10,2,1 2 3\n0.5,20,4,\n")
            .unwrap();
        assert_eq!(t.arrival_s, [0.0, 0.5]);
        assert_eq!(t.input_tokens, [10, 20]);
        assert_eq!(t.output_tokens, [2, 4]);
        assert_eq!(t.span_s(), 0.5);
        assert_eq!(t.blocks_of(0), [1, 2, 3]);
        assert!(t.blocks_of(1).is_empty());
        let plain = parse("arrival_s,input_tokens,output_tokens\n0,10,2\n").unwrap();
        assert!(plain.blocks_of(0).is_empty());
        let e = parse("arrival_s,input_tokens,output_tokens,hash_ids\n0,10,2,1 x\n").unwrap_err();
        assert_eq!(e.0, Some(2));
        assert!(e.1.contains("`hash_ids` holds `x`"), "{}", e.1);
    }

    #[test]
    fn rejects_bad_input_with_line_numbers() {
        let cases = [
            ("", None, "empty"),
            (
                "arrival,input_tokens,output_tokens\n0,1,1",
                Some(1),
                "header",
            ),
            (
                "arrival_s,input_tokens,output_tokens\n",
                None,
                "no requests",
            ),
            (
                "arrival_s,input_tokens,output_tokens\n0,1,1\nx,1,1",
                Some(3),
                "arrival_s",
            ),
            (
                "arrival_s,input_tokens,output_tokens\n2,1,1\n1,1,1",
                Some(3),
                "back in time",
            ),
            (
                "arrival_s,input_tokens,output_tokens\n0,-1,1",
                Some(2),
                "input_tokens",
            ),
            (
                "arrival_s,input_tokens,output_tokens\n0,1",
                Some(2),
                "missing column",
            ),
            (
                "arrival_s,input_tokens,output_tokens\n0,0,0",
                Some(2),
                "zero",
            ),
        ];
        for (text, line, needle) in cases {
            let (l, msg) = parse(text).unwrap_err();
            assert_eq!(l, line, "{text:?}: {msg}");
            assert!(msg.contains(needle), "{text:?}: {msg}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let e = Trace::load(Path::new("/nonexistent/trace.csv")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/trace.csv: cannot read"),
            "{e}"
        );
    }
}
