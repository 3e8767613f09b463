//! Size distributions for token counts, parsed from scenario tables such as
//! `{ dist = "lognormal", mean = 1000, cv = 1.5 }`.

use haca_policy::Rng;
use rand_distr::{Distribution, Exp1, LogNormal, Pareto, StandardNormal};

/// Exponential with the given mean (`rand_distr`'s ziggurat `Exp1`, scaled).
#[inline]
pub fn exponential(rng: &mut Rng, mean: f64) -> f64 {
    let e: f64 = Exp1.sample(rng);
    mean * e
}

/// Standard normal (`rand_distr`'s ziggurat).
#[inline]
pub fn standard_normal(rng: &mut Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A resolved, validated distribution over non-negative reals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    Fixed(f64),
    Uniform {
        min: f64,
        max: f64,
    },
    Exponential {
        mean: f64,
    },
    /// Log-normal given by its mean and coefficient of variation.
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    /// Classic Pareto (type I): `scale / U^(1/shape)`, support `[scale, inf)`.
    Pareto {
        shape: f64,
        scale: f64,
    },
}

impl Dist {
    pub fn lognormal(mean: f64, cv: f64) -> Dist {
        let sigma2 = (1.0 + cv * cv).ln();
        Dist::LogNormal {
            mu: mean.ln() - sigma2 / 2.0,
            sigma: sigma2.sqrt(),
        }
    }

    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        // The parameters were validated when the scenario was read: construction cannot fail.
        match *self {
            Dist::Fixed(v) => v,
            Dist::Uniform { min, max } => min + (max - min) * rng.uniform(),
            Dist::Exponential { mean } => exponential(rng, mean),
            Dist::LogNormal { mu, sigma } => LogNormal::new(mu, sigma)
                .expect("validated log-normal")
                .sample(rng),
            Dist::Pareto { shape, scale } => Pareto::new(scale, shape)
                .expect("validated Pareto")
                .sample(rng),
        }
    }

    /// The mean, infinite for a Pareto with shape <= 1.
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Fixed(v) => v,
            Dist::Uniform { min, max } => (min + max) / 2.0,
            Dist::Exponential { mean } => mean,
            Dist::LogNormal { mu, sigma } => (mu + sigma * sigma / 2.0).exp(),
            Dist::Pareto { shape, scale } => {
                if shape > 1.0 {
                    shape * scale / (shape - 1.0)
                } else {
                    f64::INFINITY
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_mean(d: Dist, n: usize) -> f64 {
        let mut rng = Rng::new(11);
        (0..n).map(|_| d.sample(&mut rng)).sum::<f64>() / n as f64
    }

    #[test]
    fn sample_means_match_analytic_means() {
        for d in [
            Dist::Fixed(3.0),
            Dist::Uniform { min: 2.0, max: 6.0 },
            Dist::Exponential { mean: 7.0 },
            Dist::lognormal(1000.0, 1.0),
            Dist::Pareto {
                shape: 3.0,
                scale: 10.0,
            },
        ] {
            let m = sample_mean(d, 400_000);
            assert!(
                (m / d.mean() - 1.0).abs() < 0.01,
                "{d:?}: {m} vs {}",
                d.mean()
            );
        }
    }

    #[test]
    fn normals_are_standard_and_uncorrelated() {
        let mut rng = Rng::new(8);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        let lag1 = xs.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (n - 1) as f64;
        assert!(
            mean.abs() < 0.01 && (var - 1.0).abs() < 0.01 && lag1.abs() < 0.01,
            "{mean} {var} {lag1}"
        );
        let tail = xs.iter().filter(|x| x.abs() > 1.96).count() as f64 / n as f64;
        assert!((tail - 0.05).abs() < 0.003, "{tail}");
    }

    #[test]
    fn pareto_floor_and_tail() {
        let d = Dist::Pareto {
            shape: 1.5,
            scale: 100.0,
        };
        let mut rng = Rng::new(5);
        let xs: Vec<f64> = (0..200_000).map(|_| d.sample(&mut rng)).collect();
        assert!(xs.iter().all(|&x| x >= 100.0));
        // P(X > 400) = (100/400)^1.5 = 0.125
        let tail = xs.iter().filter(|&&x| x > 400.0).count() as f64 / xs.len() as f64;
        assert!((tail - 0.125).abs() < 0.004, "{tail}");
    }
}
