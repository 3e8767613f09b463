//! The learned policy's network and its allocation-free forward pass.
//!
//! Permutation-equivariant node scoring (DESIGN section 6). With `z_n` the concatenation of node
//! `n`'s features, the job's and the global ones (after the optional observation normalization):
//!
//! ```text
//! h_n     = act(embed · z_n)                                   // [H], per node
//! m, x    = mean and max of h_n over legal nodes               // [H] each: the pooled context
//! u_n     = act(score.0 · [h_n, m, x]); u_n = act(score.l · u_n) for l in 1..layers
//! logit_n = score.out · u_n                                    // masked softmax over nodes
//! value   = value.out · act(value.l · ... act(value.0 · [m, x]))
//! ```
//!
//! Layers are affine (`weight · x + bias`, weights stored `[out, in]` as PyTorch's `nn.Linear`).
//! The forward pass shares what is common to all nodes: the job and global part of `embed`, and
//! the context part of `score.0`, are computed once per decision, so a decision costs
//! `nodes * (12 H + H^2 * layers)` multiply-adds plus `O(H^2)`.

use crate::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use crate::obs::Obs;

/// Width of the per-node input `z_n`.
pub const INPUT_FEATURES: usize = NODE_FEATURES + JOB_FEATURES + GLOBAL_FEATURES;

/// Normalized inputs are clipped to this many standard deviations.
pub const OBS_CLIP: f32 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
}

impl Activation {
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
        }
    }

    pub fn parse(s: &str) -> Option<Activation> {
        match s {
            "relu" => Some(Activation::Relu),
            "tanh" => Some(Activation::Tanh),
            _ => None,
        }
    }

    #[inline(always)]
    fn apply(self, xs: &mut [f32]) {
        match self {
            Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
            Activation::Tanh => xs.iter_mut().for_each(|x| *x = x.tanh()),
        }
    }
}

/// Sizes of the network, stored in the policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Architecture {
    /// Width `H` of every hidden layer.
    pub hidden: usize,
    /// Hidden layers of the scorer (at least 1).
    pub layers: usize,
    /// Hidden layers of the value head (at least 1).
    pub value_layers: usize,
    pub activation: Activation,
}

impl Default for Architecture {
    fn default() -> Self {
        Architecture {
            hidden: 32,
            layers: 2,
            value_layers: 1,
            activation: Activation::Relu,
        }
    }
}

impl Architecture {
    /// Every tensor's name and shape, in file order. Weights are `[out, in]`.
    pub fn tensor_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let h = self.hidden;
        let mut v = vec![
            ("embed.weight".to_string(), vec![h, INPUT_FEATURES]),
            ("embed.bias".to_string(), vec![h]),
        ];
        for l in 0..self.layers {
            v.push((
                format!("score.{l}.weight"),
                vec![h, if l == 0 { 3 * h } else { h }],
            ));
            v.push((format!("score.{l}.bias"), vec![h]));
        }
        v.push(("score.out.weight".into(), vec![1, h]));
        v.push(("score.out.bias".into(), vec![1]));
        for l in 0..self.value_layers {
            v.push((
                format!("value.{l}.weight"),
                vec![h, if l == 0 { 2 * h } else { h }],
            ));
            v.push((format!("value.{l}.bias"), vec![h]));
        }
        v.push(("value.out.weight".into(), vec![1, h]));
        v.push(("value.out.bias".into(), vec![1]));
        v
    }

    pub fn parameter_count(&self) -> usize {
        self.tensor_shapes()
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

/// An affine layer kept transposed (`[in][out]`): `y = b + sum_i x_i * row_i` runs over
/// contiguous rows the compiler vectorizes, with no horizontal sums.
#[derive(Debug, Clone, PartialEq)]
struct Dense {
    t: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

impl Dense {
    /// From a `[out, in]` row-major weight and its bias.
    fn new(weight: &[f32], bias: &[f32], outputs: usize, inputs: usize) -> Dense {
        let mut t = vec![0.0; inputs * outputs];
        for o in 0..outputs {
            for i in 0..inputs {
                t[i * outputs + o] = weight[o * inputs + i];
            }
        }
        Dense {
            t,
            bias: bias.to_vec(),
            inputs,
            outputs,
        }
    }

    /// `y += W[:, cols] · x` for the input columns `cols.start..cols.start + x.len()`.
    #[inline(always)]
    fn accumulate(&self, x: &[f32], first_col: usize, y: &mut [f32]) {
        debug_assert_eq!(y.len(), self.outputs);
        // Common widths get a fixed-size accumulator the compiler keeps in registers.
        match self.outputs {
            16 => return accumulate_fixed::<16>(&self.t, x, first_col, y),
            32 => return accumulate_fixed::<32>(&self.t, x, first_col, y),
            64 => return accumulate_fixed::<64>(&self.t, x, first_col, y),
            _ => {}
        }
        for (i, &xi) in x.iter().enumerate() {
            if xi == 0.0 {
                continue; // ReLU outputs and one-hot features are often exactly zero
            }
            let row = &self.t[(first_col + i) * self.outputs..(first_col + i + 1) * self.outputs];
            for (yo, &w) in y.iter_mut().zip(row) {
                *yo += xi * w;
            }
        }
    }

    /// `y = b + W · x` over all inputs.
    #[inline(always)]
    fn forward(&self, x: &[f32], y: &mut [f32]) {
        debug_assert_eq!(x.len(), self.inputs);
        y.copy_from_slice(&self.bias);
        self.accumulate(x, 0, y);
    }
}

/// [`Dense::accumulate`] for `N` outputs: same arithmetic in the same order.
#[inline(always)]
fn accumulate_fixed<const N: usize>(t: &[f32], x: &[f32], first_col: usize, y: &mut [f32]) {
    let mut acc: [f32; N] = y.try_into().expect("N outputs");
    for (i, &xi) in x.iter().enumerate() {
        if xi == 0.0 {
            continue;
        }
        let start = (first_col + i) * N;
        let row: &[f32; N] = t[start..start + N].try_into().expect("a row of N");
        for o in 0..N {
            acc[o] += xi * row[o];
        }
    }
    y.copy_from_slice(&acc);
}

/// The network's parameters, ready to run. Built from named `[out, in]` tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    pub arch: Architecture,
    embed: Dense,
    score: Vec<Dense>,
    score_out: Dense,
    value: Vec<Dense>,
    value_out: Dense,
    /// Observation normalization: `(z - mean) / std`, clipped to ±[`OBS_CLIP`].
    obs_mean: Vec<f32>,
    obs_inv_std: Vec<f32>,
}

/// Per-decision working memory, grown to the largest network seen and then reused: after the
/// first decision on a given number of nodes, a decision allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct Scratch {
    z: Vec<f32>,
    h: Vec<f32>,
    shared: Vec<f32>,
    context: Vec<f32>,
    u: Vec<f32>,
    v: Vec<f32>,
}

impl Network {
    /// Builds the network from tensors looked up by name (`[out, in]` weights, shapes as
    /// [`Architecture::tensor_shapes`]; the caller has checked them). `obs_norm` is the optional
    /// `(mean, std)` of `z`.
    pub fn from_tensors(
        arch: Architecture,
        get: impl Fn(&str) -> Vec<f32>,
        obs_norm: Option<(Vec<f32>, Vec<f32>)>,
    ) -> Network {
        let h = arch.hidden;
        let dense = |name: &str, outputs: usize, inputs: usize| {
            Dense::new(
                &get(&format!("{name}.weight")),
                &get(&format!("{name}.bias")),
                outputs,
                inputs,
            )
        };
        let (obs_mean, obs_inv_std) = match obs_norm {
            Some((mean, std)) => (mean, std.iter().map(|s| 1.0 / s).collect()),
            None => (vec![0.0; INPUT_FEATURES], vec![1.0; INPUT_FEATURES]),
        };
        Network {
            arch,
            embed: dense("embed", h, INPUT_FEATURES),
            score: (0..arch.layers)
                .map(|l| dense(&format!("score.{l}"), h, if l == 0 { 3 * h } else { h }))
                .collect(),
            score_out: dense("score.out", 1, h),
            value: (0..arch.value_layers)
                .map(|l| dense(&format!("value.{l}"), h, if l == 0 { 2 * h } else { h }))
                .collect(),
            value_out: dense("value.out", 1, h),
            obs_mean,
            obs_inv_std,
        }
    }

    /// The observation normalization `(mean, std)`, identity if the file had none.
    pub fn obs_norm(&self) -> (Vec<f32>, Vec<f32>) {
        (
            self.obs_mean.clone(),
            self.obs_inv_std.iter().map(|s| 1.0 / s).collect(),
        )
    }

    /// Normalizes `src` (the features at offset `first` of `z`) into `dst`.
    #[inline(always)]
    fn normalize(&self, src: &[f32], first: usize, dst: &mut [f32]) {
        let mean = &self.obs_mean[first..first + src.len()];
        let inv = &self.obs_inv_std[first..first + src.len()];
        for (((d, &s), &m), &i) in dst.iter_mut().zip(src).zip(mean).zip(inv) {
            *d = ((s - m) * i).clamp(-OBS_CLIP, OBS_CLIP);
        }
    }

    /// Scores every node: writes `logits[n]` for the `n = mask.len()` nodes (`-inf` where the
    /// mask is false) and returns the state value. `nodes` holds `n * NODE_FEATURES` values.
    /// Allocates nothing once `scratch` has seen `n` nodes. With no legal node every logit is
    /// `-inf` and the value is computed from a zero context.
    pub fn forward(&self, obs: Obs<'_>, scratch: &mut Scratch, logits: &mut [f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        {
            if avx2() {
                // SAFETY: the CPU supports AVX2 (checked at run time).
                return unsafe { self.forward_avx2(obs, scratch, logits) };
            }
        }
        self.forward_impl(obs.nodes, obs.job, obs.global, obs.mask, scratch, logits)
    }

    /// The same code compiled for AVX2: twice the lanes of the x86-64 baseline. No FMA, so
    /// results are bit-identical to the baseline path (each output still rounds after every
    /// multiply and add, in the same order).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn forward_avx2(&self, obs: Obs<'_>, scratch: &mut Scratch, logits: &mut [f32]) -> f32 {
        self.forward_impl(obs.nodes, obs.job, obs.global, obs.mask, scratch, logits)
    }

    /// The forward pass without the AVX2 dispatch (the x86-64 baseline path), for checking that
    /// both paths give bit-identical results.
    #[doc(hidden)]
    pub fn forward_portable(&self, obs: Obs<'_>, scratch: &mut Scratch, logits: &mut [f32]) -> f32 {
        self.forward_impl(obs.nodes, obs.job, obs.global, obs.mask, scratch, logits)
    }

    #[inline(always)]
    fn forward_impl(
        &self,
        nodes: &[f32],
        job: &[f32],
        global: &[f32],
        mask: &[bool],
        scratch: &mut Scratch,
        logits: &mut [f32],
    ) -> f32 {
        let n = mask.len();
        let h = self.arch.hidden;
        assert_eq!(
            nodes.len(),
            n * NODE_FEATURES,
            "node features for {n} nodes"
        );
        assert_eq!(logits.len(), n, "one logit per node");
        assert_eq!((job.len(), global.len()), (JOB_FEATURES, GLOBAL_FEATURES));
        let s = scratch;
        s.z.resize(INPUT_FEATURES, 0.0);
        s.h.resize(n * h, 0.0);
        s.shared.resize(h, 0.0);
        s.context.resize(2 * h, 0.0);
        s.u.resize(h, 0.0);
        s.v.resize(h, 0.0);
        let act = self.arch.activation;

        // The job and global part of the embedding is the same for every node.
        self.normalize(
            job,
            NODE_FEATURES,
            &mut s.z[NODE_FEATURES..NODE_FEATURES + JOB_FEATURES],
        );
        self.normalize(
            global,
            NODE_FEATURES + JOB_FEATURES,
            &mut s.z[NODE_FEATURES + JOB_FEATURES..],
        );
        s.shared.copy_from_slice(&self.embed.bias);
        self.embed
            .accumulate(&s.z[NODE_FEATURES..], NODE_FEATURES, &mut s.shared);

        // h_n for legal nodes, and the pooled context [mean | max].
        let (mean, max) = s.context.split_at_mut(h);
        mean.fill(0.0);
        max.fill(f32::NEG_INFINITY);
        let mut legal = 0usize;
        for (i, &ok) in mask.iter().enumerate() {
            if !ok {
                continue;
            }
            legal += 1;
            self.normalize(
                &nodes[i * NODE_FEATURES..(i + 1) * NODE_FEATURES],
                0,
                &mut s.z[..NODE_FEATURES],
            );
            let hn = &mut s.h[i * h..(i + 1) * h];
            hn.copy_from_slice(&s.shared);
            self.embed.accumulate(&s.z[..NODE_FEATURES], 0, hn);
            act.apply(hn);
            for ((m, x), &v) in mean.iter_mut().zip(max.iter_mut()).zip(hn.iter()) {
                *m += v;
                *x = x.max(v);
            }
        }
        if legal > 0 {
            let inv = 1.0 / legal as f32;
            mean.iter_mut().for_each(|m| *m *= inv);
        } else {
            max.fill(0.0);
        }

        // The context part of the first scoring layer is shared too.
        let first = &self.score[0];
        s.shared.copy_from_slice(&first.bias);
        first.accumulate(&s.context, h, &mut s.shared);
        for (i, &ok) in mask.iter().enumerate() {
            if !ok {
                logits[i] = f32::NEG_INFINITY;
                continue;
            }
            s.u.copy_from_slice(&s.shared);
            first.accumulate(&s.h[i * h..(i + 1) * h], 0, &mut s.u);
            act.apply(&mut s.u);
            for layer in &self.score[1..] {
                layer.forward(&s.u, &mut s.v);
                act.apply(&mut s.v);
                std::mem::swap(&mut s.u, &mut s.v);
            }
            let mut out = [0.0f32];
            self.score_out.forward(&s.u, &mut out);
            logits[i] = out[0];
        }

        // Value head on the context.
        self.value[0].forward(&s.context, &mut s.u);
        act.apply(&mut s.u);
        for layer in &self.value[1..] {
            layer.forward(&s.u, &mut s.v);
            act.apply(&mut s.v);
            std::mem::swap(&mut s.u, &mut s.v);
        }
        let mut out = [0.0f32];
        self.value_out.forward(&s.u, &mut out);
        out[0]
    }
}

/// Whether this CPU has AVX2 (checked once).
#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(|| std::is_x86_feature_detected!("avx2"))
}

/// Softmax of `logits` into `probs` (masked entries are `-inf` and get 0). All `-inf` gives all 0.
pub fn softmax(logits: &[f32], probs: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        probs.fill(0.0);
        return;
    }
    let mut sum = 0.0;
    for (p, &l) in probs.iter_mut().zip(logits) {
        *p = (l - max).exp();
        sum += *p;
    }
    probs.iter_mut().for_each(|p| *p /= sum);
}
