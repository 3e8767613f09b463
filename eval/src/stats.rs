//! Means and 95% confidence intervals.

use serde::Serialize;

/// The mean of a sample and the half-width of its 95% confidence interval (Student's t), so the
/// interval is `mean ± ci95`. `ci95` is NaN for fewer than two values; both are NaN when every
/// value is NaN (a metric that does not apply). NaN values are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub mean: f64,
    pub ci95: f64,
    pub n: usize,
}

/// Two-sided 97.5% quantiles of Student's t for 1..=30 degrees of freedom.
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 97.5% quantile of Student's t with `df` degrees of freedom: tabulated up to 30, then
/// interpolated in `1/df` through 40 (2.021), 60 (2.000), 120 (1.980) and infinity (1.960).
pub fn t_quantile_975(df: usize) -> f64 {
    assert!(df >= 1, "Student's t needs at least one degree of freedom");
    if df <= 30 {
        return T975[df - 1];
    }
    let knots = [
        (30.0, 2.042),
        (40.0, 2.021),
        (60.0, 2.000),
        (120.0, 1.980),
        (f64::INFINITY, 1.960),
    ];
    let x = 1.0 / df as f64;
    for w in knots.windows(2) {
        let ((d0, t0), (d1, t1)) = (w[0], w[1]);
        if (df as f64) <= d1 {
            let (x0, x1) = (1.0 / d0, 1.0 / d1);
            return t0 + (t1 - t0) * (x - x0) / (x1 - x0);
        }
    }
    1.960
}

pub fn summarize(values: &[f64]) -> Summary {
    let xs: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    let n = xs.len();
    if n == 0 {
        return Summary {
            mean: f64::NAN,
            ci95: f64::NAN,
            n,
        };
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Summary {
            mean,
            ci95: f64::NAN,
            n,
        };
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Summary {
        mean,
        ci95: t_quantile_975(n - 1) * (var / n as f64).sqrt(),
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_of_a_hand_computed_sample() {
        // mean 5, sample variance ((2^2 + 1 + 0 + 1 + 2^2) / 4) = 2.5, se = sqrt(2.5 / 5) = 0.7071,
        // t(4) = 2.776: half-width 1.9630.
        let s = summarize(&[3.0, 4.0, 5.0, 6.0, 7.0]);
        assert_eq!(s.mean, 5.0);
        assert!((s.ci95 - 2.776 * 0.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.n, 5);
    }

    #[test]
    fn degenerate_samples() {
        let one = summarize(&[2.0]);
        assert_eq!(one.mean, 2.0);
        assert!(one.ci95.is_nan());
        let same = summarize(&[1.0, 1.0, 1.0]);
        assert_eq!((same.mean, same.ci95), (1.0, 0.0));
        assert!(summarize(&[f64::NAN, f64::NAN]).mean.is_nan());
        assert_eq!(summarize(&[f64::NAN, 4.0, 6.0]).mean, 5.0);
    }

    #[test]
    fn t_quantiles_match_tables() {
        assert_eq!(t_quantile_975(1), 12.706);
        assert_eq!(t_quantile_975(31 - 1), 2.042);
        assert!((t_quantile_975(40) - 2.021).abs() < 1e-9);
        assert!((t_quantile_975(50) - 2.009).abs() < 0.002); // table: 2.009
        assert!((t_quantile_975(100) - 1.984).abs() < 0.002); // table: 1.984
        assert!((t_quantile_975(1_000_000) - 1.960).abs() < 1e-3);
    }
}
