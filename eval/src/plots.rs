//! Charts, written as SVG and PNG: one line-chart drawer shared by every plot.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::compare::Comparison;

/// A line chart: named series of (x, y) points.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Plot `log10(x)` and label ticks with `x` (for latencies spanning decades).
    pub log_x: bool,
    /// Draw a marker at every point (for sparse series such as sweeps).
    pub markers: bool,
}

pub(crate) const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Fonts tried for text, in order, after `$HACA_FONT`.
const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a TrueType font for chart text once per process (plotters needs one to measure and
/// draw text in both backends).
pub(crate) fn ensure_font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("HACA_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                    .map_err(|_| format!("{}: not a usable TrueType font: set HACA_FONT to another", path.display()));
            }
        }
        Err(format!(
            "no font found for chart text (tried {}): install fonts-dejavu-core or set HACA_FONT=/path/to/font.ttf",
            FONT_PATHS.join(", ")
        ))
    })
    .clone()
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &LineChart) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let tx = |x: f64| if chart.log_x { x.max(1e-9).log10() } else { x };
    let pts = || {
        chart
            .series
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in pts() {
        x0 = x0.min(tx(x));
        x1 = x1.max(tx(x));
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let pad = |lo: f64, hi: f64| if hi > lo { (hi - lo) * 0.03 } else { 0.5 };
    let (px, py) = (pad(x0, x1), pad(y0, y1));
    let y_lo = if y0 >= 0.0 { 0.0 } else { y0 - py };
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d((x0 - px)..(x1 + px), y_lo..(y1 + py))
        .map_err(err)?;
    let log_x = chart.log_x;
    let x_fmt = move |v: &f64| {
        let x = if log_x { 10f64.powf(*v) } else { *v };
        if x.abs() >= 100.0 || x == x.round() {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        }
    };
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .x_label_formatter(&x_fmt)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(err)?;
    for (i, (name, points)) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let data: Vec<(f64, f64)> = points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| (tx(x), y))
            .collect();
        ctx.draw_series(LineSeries::new(data.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        if chart.markers {
            ctx.draw_series(data.into_iter().map(|p| Circle::new(p, 4, color.filled())))
                .map_err(err)?;
        }
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// Writes `chart` as `<dir>/<stem>.svg` and `<dir>/<stem>.png`; returns both paths.
pub fn save(chart: &LineChart, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, String> {
    ensure_font()?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let (svg, png) = (
        dir.join(format!("{stem}.svg")),
        dir.join(format!("{stem}.png")),
    );
    let size = (960, 600);
    draw(&SVGBackend::new(&svg, size).into_drawing_area(), chart)
        .map_err(|e| format!("{}: {e}", svg.display()))?;
    draw(&BitMapBackend::new(&png, size).into_drawing_area(), chart)
        .map_err(|e| format!("{}: {e}", png.display()))?;
    Ok(vec![svg, png])
}

/// Latency CDF, per-node busy fraction and stranded idle over time, from a comparison's
/// detailed episodes.
pub fn comparison_charts(cmp: &Comparison) -> Vec<(&'static str, LineChart)> {
    let mut cdf = Vec::new();
    let mut busy = Vec::new();
    let mut stranded = Vec::new();
    for r in &cmp.results {
        let name = r.contender.name().to_string();
        let mut lat: Vec<f64> = r
            .details
            .iter()
            .flat_map(|d| d.latencies.iter().copied())
            .collect();
        lat.sort_by(f64::total_cmp);
        let n = lat.len();
        // At most ~400 points per curve: enough for a smooth CDF, small files.
        let step = (n / 400).max(1);
        let mut points: Vec<(f64, f64)> = (0..n)
            .step_by(step)
            .map(|i| (lat[i], (i + 1) as f64 / n as f64))
            .collect();
        if let Some(&last) = lat.last() {
            points.push((last, 1.0));
        }
        cdf.push((name.clone(), points));
        if let Some(d) = r.details.first() {
            busy.push((
                name.clone(),
                d.busy
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| (i as f64, b))
                    .collect(),
            ));
            stranded.push((name, d.stranded_series.clone()));
        }
    }
    vec![
        (
            "latency_cdf",
            LineChart {
                title: format!("{}: response latency CDF", cmp.scenario),
                x_label: "response latency (s, log scale)".into(),
                y_label: "fraction of jobs answered".into(),
                series: cdf,
                log_x: true,
                markers: false,
            },
        ),
        (
            "busy_per_node",
            LineChart {
                title: format!("{}: busy fraction per node (episode 0)", cmp.scenario),
                x_label: "node index".into(),
                y_label: "busy fraction of slot time".into(),
                series: busy,
                log_x: false,
                markers: true,
            },
        ),
        (
            "stranded_over_time",
            LineChart {
                title: format!(
                    "{}: stranded idle capacity over time (episode 0)",
                    cmp.scenario
                ),
                x_label: "simulated time (s)".into(),
                y_label: "stranded fraction of capacity".into(),
                series: stranded,
                log_x: false,
                markers: false,
            },
        ),
    ]
}
