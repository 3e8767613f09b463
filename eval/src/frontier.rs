//! The latency / stranded-capacity frontier: one point per router at its mean stranded idle
//! fraction and mean latency, with both 95% intervals as error bars, and the Pareto front (the
//! routers no other beats on both means) joined by a dashed line.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::compare::Comparison;
use crate::plots::{ensure_font, COLORS};
use crate::stats::Summary;

/// One router on the frontier chart.
#[derive(Debug, Clone)]
pub struct FrontierPoint {
    pub name: String,
    pub stranded: Summary,
    pub latency: Summary,
}

#[derive(Debug, Clone)]
pub struct Frontier {
    pub title: String,
    pub points: Vec<FrontierPoint>,
}

impl Frontier {
    /// Every contender of `cmp` (the pooled reference included: it marks what no router can
    /// reach).
    pub fn of(cmp: &Comparison) -> Frontier {
        Frontier {
            title: format!("{}: latency against stranded capacity", cmp.scenario),
            points: cmp
                .results
                .iter()
                .map(|r| FrontierPoint {
                    name: r.contender.name().to_string(),
                    stranded: r.get(haca_env::Metric::StrandedIdleFrac),
                    latency: r.get(haca_env::Metric::MeanLatency),
                })
                .collect(),
        }
    }

    /// Indices of the points no other point beats on both means (lower is better on both), in
    /// order of stranded fraction.
    pub fn pareto(&self) -> Vec<usize> {
        let p = &self.points;
        let dominated = |i: usize| {
            p.iter().enumerate().any(|(j, q)| {
                j != i
                    && q.stranded.mean <= p[i].stranded.mean
                    && q.latency.mean <= p[i].latency.mean
                    && (q.stranded.mean < p[i].stranded.mean || q.latency.mean < p[i].latency.mean)
            })
        };
        let mut front: Vec<usize> = (0..p.len())
            .filter(|&i| p[i].stranded.mean.is_finite() && p[i].latency.mean.is_finite())
            .filter(|&i| !dominated(i))
            .collect();
        front.sort_by(|&a, &b| p[a].stranded.mean.total_cmp(&p[b].stranded.mean));
        front
    }

    /// Writes `<dir>/<stem>.svg` and `.png`; returns both paths.
    pub fn save(&self, dir: &Path, stem: &str) -> Result<Vec<PathBuf>, String> {
        ensure_font()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
        let (svg, png) = (
            dir.join(format!("{stem}.svg")),
            dir.join(format!("{stem}.png")),
        );
        let size = (960, 640);
        self.draw(&SVGBackend::new(&svg, size).into_drawing_area())
            .map_err(|e| format!("{}: {e}", svg.display()))?;
        self.draw(&BitMapBackend::new(&png, size).into_drawing_area())
            .map_err(|e| format!("{}: {e}", png.display()))?;
        Ok(vec![svg, png])
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let pts: Vec<&FrontierPoint> = self
            .points
            .iter()
            .filter(|p| p.stranded.mean.is_finite() && p.latency.mean.is_finite())
            .collect();
        let half = |s: &Summary| if s.ci95.is_finite() { s.ci95 } else { 0.0 };
        let lat_lo = |p: &FrontierPoint| (p.latency.mean - half(&p.latency)).max(1e-3);
        let lat_hi = |p: &FrontierPoint| p.latency.mean + half(&p.latency);
        let (y_min, y_max) = pts.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
            (lo.min(lat_lo(p)), hi.max(lat_hi(p)))
        });
        // Latencies of routers span decades (random against sed): a log axis keeps both legible.
        let log_y = y_min.is_finite() && y_max / y_min > 20.0;
        let ty = move |y: f64| if log_y { y.max(1e-3).log10() } else { y };
        let x_max = pts
            .iter()
            .map(|p| p.stranded.mean + half(&p.stranded))
            .fold(0.0f64, f64::max)
            .max(0.01);
        let (y0, y1) = if y_min.is_finite() {
            let pad = (ty(y_max) - ty(y_min)).max(1e-6) * 0.05;
            (ty(y_min) - pad, ty(y_max) + pad)
        } else {
            (0.0, 1.0)
        };
        let mut ctx = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(14)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max * 1.08, y0..y1)
            .map_err(err)?;
        let y_fmt = move |v: &f64| {
            let y = if log_y { 10f64.powf(*v) } else { *v };
            if y >= 10.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.2}")
            }
        };
        let y_desc = if log_y {
            "mean response latency (s, log scale)"
        } else {
            "mean response latency (s)"
        };
        ctx.configure_mesh()
            .x_desc("stranded idle fraction of capacity (lower is better)")
            .y_desc(y_desc)
            .y_label_formatter(&y_fmt)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(err)?;
        let front: Vec<(f64, f64)> = self
            .pareto()
            .into_iter()
            .map(|i| {
                (
                    self.points[i].stranded.mean,
                    ty(self.points[i].latency.mean),
                )
            })
            .collect();
        ctx.draw_series(DashedLineSeries::new(
            front,
            8,
            6,
            BLACK.mix(0.5).stroke_width(2),
        ))
        .map_err(err)?
        .label("Pareto front (means)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
        for (i, p) in pts.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let (x, y) = (p.stranded.mean, ty(p.latency.mean));
            let style = color.stroke_width(2);
            let (xh, yl, yh) = (half(&p.stranded), ty(lat_lo(p)), ty(lat_hi(p)));
            ctx.draw_series([
                PathElement::new(vec![(x, yl), (x, yh)], style),
                PathElement::new(vec![(x - xh, y), (x + xh, y)], style),
            ])
            .map_err(err)?;
            ctx.draw_series([Circle::new((x, y), 6, color.filled())])
                .map_err(err)?
                .label(p.name.as_str())
                .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
        }
        ctx.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, stranded: f64, latency: f64) -> FrontierPoint {
        let s = |mean| Summary {
            mean,
            ci95: 0.1,
            n: 10,
        };
        FrontierPoint {
            name: name.into(),
            stranded: s(stranded),
            latency: s(latency),
        }
    }

    #[test]
    fn the_pareto_front_keeps_exactly_the_undominated_points() {
        let f = Frontier {
            title: String::new(),
            points: vec![
                point("sed", 0.10, 8.0),
                point("affinity", 0.03, 50.0),
                point("random", 0.60, 700.0),
                point("policy", 0.05, 6.0),
                point("twin", 0.05, 6.0),
                point("nan", f64::NAN, 1.0),
            ],
        };
        // sed is dominated by policy; random by everything; equal points do not dominate each
        // other; a point without a value is not on the front.
        assert_eq!(f.pareto(), [1, 3, 4]);
    }
}
