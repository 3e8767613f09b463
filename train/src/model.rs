//! The policy network in burn, the mirror of `haca_policy::model` (same layers, same names), so
//! that export is a copy and the two forward passes agree (tested).

use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, relu, tanh};
use burn::tensor::{Device, Tensor, TensorData};
use haca_policy::features::{GLOBAL_FEATURES, JOB_FEATURES, NODE_FEATURES};
use haca_policy::model::{INPUT_FEATURES, OBS_CLIP};
use haca_policy::{Activation, Architecture, Policy, PolicyError, PolicyInfo, Rng};
use rand_distr::{Distribution, StandardNormal};

/// An affine layer. The weight is stored `[in, out]` (burn's `x.matmul(w)` convention) and
/// transposed to `[out, in]` on export.
#[derive(Module, Debug)]
pub struct Dense {
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

/// Orthogonal `[rows, cols]` matrix times `gain` (Gram-Schmidt on Gaussian vectors, as
/// `torch.nn.init.orthogonal_`): the initialization the PPO implementation details call for.
pub fn orthogonal(rows: usize, cols: usize, gain: f64, rng: &mut Rng) -> Vec<f32> {
    // Orthonormalize the shorter side, then transpose back if needed.
    let (n, m) = if rows <= cols {
        (rows, cols)
    } else {
        (cols, rows)
    };
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(n);
    while q.len() < n {
        let mut v: Vec<f64> = (0..m).map(|_| StandardNormal.sample(rng)).collect();
        for u in &q {
            let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm > 1e-6 {
            v.iter_mut().for_each(|a| *a /= norm);
            q.push(v);
        }
    }
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            let v = if rows <= cols { q[r][c] } else { q[c][r] };
            out[r * cols + c] = (v * gain) as f32;
        }
    }
    out
}

impl Dense {
    /// A layer with orthogonal weights (`[out, in]` semantics, gain `gain`) and zero bias.
    pub fn init(inputs: usize, outputs: usize, gain: f64, rng: &mut Rng, device: &Device) -> Dense {
        let w_out_in = orthogonal(outputs, inputs, gain, rng);
        Dense::from_out_in(&w_out_in, &vec![0.0; outputs], outputs, inputs, device)
    }

    /// From a row-major `[out, in]` weight and a bias.
    pub fn from_out_in(
        w: &[f32],
        b: &[f32],
        outputs: usize,
        inputs: usize,
        device: &Device,
    ) -> Dense {
        let mut t = vec![0.0f32; inputs * outputs];
        for o in 0..outputs {
            for i in 0..inputs {
                t[i * outputs + o] = w[o * inputs + i];
            }
        }
        Dense {
            weight: Param::from_tensor(Tensor::from_data(
                TensorData::new(t, [inputs, outputs]),
                device,
            )),
            bias: Param::from_tensor(Tensor::from_data(
                TensorData::new(b.to_vec(), [outputs]),
                device,
            )),
        }
    }

    /// `x · W + b` for `x` of shape `[rows, in]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze()
    }

    /// `([out, in] row-major weight, bias)`, for export.
    pub fn to_out_in(&self) -> (Vec<f32>, Vec<f32>) {
        let w = self.weight.val();
        let [inputs, outputs] = w.dims();
        let t: Vec<f32> = w.into_data().try_to_vec().expect("f32 weights");
        let mut out = vec![0.0f32; inputs * outputs];
        for i in 0..inputs {
            for o in 0..outputs {
                out[o * inputs + i] = t[i * outputs + o];
            }
        }
        (
            out,
            self.bias.val().into_data().try_to_vec().expect("f32 bias"),
        )
    }
}

/// The node-scoring actor-critic. See `haca_policy::model` for the maths.
#[derive(Module, Debug)]
pub struct Net {
    pub embed: Dense,
    pub score: Vec<Dense>,
    pub score_out: Dense,
    pub value: Vec<Dense>,
    pub value_out: Dense,
    /// 0 ReLU, 1 tanh (a plain number so the module derive needs nothing special).
    pub activation: usize,
}

/// A batch of observations as the VecEnv lays them out.
pub struct Batch {
    /// `[B, N, NODE_FEATURES]`
    pub nodes: Tensor<3>,
    /// `[B, JOB_FEATURES]`
    pub job: Tensor<2>,
    /// `[B, GLOBAL_FEATURES]`
    pub global: Tensor<2>,
    /// `[B, N]`, 1 legal, 0 not.
    pub mask: Tensor<2>,
}

impl Batch {
    /// From flat row-major buffers of `b` observations with `n` node rows each.
    pub fn from_slices(
        nodes: &[f32],
        job: &[f32],
        global: &[f32],
        mask: &[f32],
        b: usize,
        n: usize,
        device: &Device,
    ) -> Batch {
        Batch {
            nodes: Tensor::from_data(
                TensorData::new(nodes.to_vec(), [b, n, NODE_FEATURES]),
                device,
            ),
            job: Tensor::from_data(TensorData::new(job.to_vec(), [b, JOB_FEATURES]), device),
            global: Tensor::from_data(
                TensorData::new(global.to_vec(), [b, GLOBAL_FEATURES]),
                device,
            ),
            mask: Tensor::from_data(TensorData::new(mask.to_vec(), [b, n]), device),
        }
    }
}

impl Batch {
    /// Observations `rows` of flat step-major buffers as the VecEnv lays them out (`n` node
    /// rows per observation; the mask as 1.0 / 0.0): a minibatch.
    pub fn gather(
        nodes: &[f32],
        job: &[f32],
        global: &[f32],
        mask: &[f32],
        rows: &[usize],
        n: usize,
        device: &Device,
    ) -> Batch {
        let pick = |src: &[f32], width: usize| -> Vec<f32> {
            rows.iter()
                .flat_map(|&i| src[i * width..(i + 1) * width].iter().copied())
                .collect()
        };
        Batch::from_slices(
            &pick(nodes, n * NODE_FEATURES),
            &pick(job, JOB_FEATURES),
            &pick(global, GLOBAL_FEATURES),
            &pick(mask, n),
            rows.len(),
            n,
            device,
        )
    }
}

/// Masked logits stand at this value: far below any real logit, and finite (no NaN in softmax).
pub const MASKED_LOGIT: f32 = -1e9;

impl Net {
    pub fn new(arch: Architecture, seed: u64, device: &Device) -> Net {
        let mut rng = Rng::new(seed);
        let h = arch.hidden;
        let hidden_gain = 2f64.sqrt();
        Net {
            embed: Dense::init(INPUT_FEATURES, h, hidden_gain, &mut rng, device),
            score: (0..arch.layers)
                .map(|l| {
                    Dense::init(
                        if l == 0 { 3 * h } else { h },
                        h,
                        hidden_gain,
                        &mut rng,
                        device,
                    )
                })
                .collect(),
            // Small policy-head gain: near-uniform initial policy (CleanRL's 0.01).
            score_out: Dense::init(h, 1, 0.01, &mut rng, device),
            value: (0..arch.value_layers)
                .map(|l| {
                    Dense::init(
                        if l == 0 { 2 * h } else { h },
                        h,
                        hidden_gain,
                        &mut rng,
                        device,
                    )
                })
                .collect(),
            value_out: Dense::init(h, 1, 1.0, &mut rng, device),
            activation: match arch.activation {
                Activation::Relu => 0,
                Activation::Tanh => 1,
            },
        }
    }

    pub fn arch(&self) -> Architecture {
        Architecture {
            hidden: self.embed.bias.val().dims()[0],
            layers: self.score.len(),
            value_layers: self.value.len(),
            activation: if self.activation == 1 {
                Activation::Tanh
            } else {
                Activation::Relu
            },
        }
    }

    fn act<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if self.activation == 1 {
            tanh(x)
        } else {
            relu(x)
        }
    }

    /// Masked logits `[B, N]` (masked nodes at [`MASKED_LOGIT`]) and values `[B]`.
    ///
    /// As in the runtime, the parts of `embed` and `score.0` that read per-decision inputs (job
    /// and global features; the pooled context) are computed once per decision and broadcast
    /// over nodes, instead of concatenating copies of them to every node's row: half the
    /// multiply-adds and no `[B, N, 3H]` copies. The result is the same function of the same
    /// parameters (the parity test holds it to the runtime).
    pub fn forward(&self, batch: &Batch) -> (Tensor<2>, Tensor<1>) {
        self.forward_with(batch, false)
    }

    /// [`Net::forward`]; with `detach_critic` the value head reads the pooled context without
    /// passing gradients back into the layers the policy shares with it (same values).
    pub fn forward_with(&self, batch: &Batch, detach_critic: bool) -> (Tensor<2>, Tensor<1>) {
        let [b, n, _] = batch.nodes.dims();
        let h = self.embed.bias.val().dims()[0];
        let nf = NODE_FEATURES;
        // h_n = act(W_node · node_n + (W_shared · [job, global] + b))
        let w = self.embed.weight.val(); // [25, H]
                                         // The runtime's input preprocessing (`haca_policy::model`, recorded in the file): every
                                         // feature clipped to ±OBS_CLIP. Without it the update would score other inputs than the
                                         // rollout acted on wherever a feature passes 10 (ZKML work, overload bursts).
        let clip = |x: Tensor<2>| x.clamp(-OBS_CLIP, OBS_CLIP);
        let shared = clip(Tensor::cat(
            vec![batch.job.clone(), batch.global.clone()],
            1,
        )); // [B, 13]
        let per_decision = shared.matmul(w.clone().slice([nf..INPUT_FEATURES, 0..h]))
            + self.embed.bias.val().unsqueeze(); // [B, H]
        let per_node = clip(batch.nodes.clone().reshape([b * n, nf]))
            .matmul(w.slice([0..nf, 0..h]))
            .reshape([b, n, h]);
        let hn = self.act(per_node + per_decision.unsqueeze_dim::<3>(1)); // [B, N, H]
        let m = batch.mask.clone().unsqueeze_dim::<3>(2); // [B, N, 1]
        let legal = m.clone().sum_dim(1); // [B, 1, 1]
        let any = legal.clone().clamp_max(1.0); // [B, 1, 1]: 0 when no node is legal
        let mean = (hn.clone() * m.clone()).sum_dim(1) / legal.clamp_min(1.0); // [B, 1, H]
                                                                               // With no legal node the runtime pools a zero context; so does this.
        let max = (hn.clone() + (m - 1.0) * 1e9).max_dim(1) * any; // [B, 1, H]
        let context = Tensor::cat(vec![mean, max], 2).reshape([b, 2 * h]); // [B, 2H]

        // u = act(W_h · h_n + (W_ctx · context + b))
        let w0 = self.score[0].weight.val(); // [3H, H]
        let ctx_part = context.clone().matmul(w0.clone().slice([h..3 * h, 0..h]))
            + self.score[0].bias.val().unsqueeze(); // [B, H]
        let u = hn
            .reshape([b * n, h])
            .matmul(w0.slice([0..h, 0..h]))
            .reshape([b, n, h])
            + ctx_part.unsqueeze_dim::<3>(1);
        let u = self.act(u.reshape([b * n, h])); // [B*N, H]
        let mut u = u;
        for layer in &self.score[1..] {
            u = self.act(layer.forward(u));
        }
        let logits = self.score_out.forward(u).reshape([b, n]); // [B, N]
        let mask = batch.mask.clone();
        let logits = logits * mask.clone() + (mask - 1.0) * (-MASKED_LOGIT); // [B, N]
        let context = if detach_critic {
            context.detach()
        } else {
            context
        };
        let mut v = self.act(self.value[0].forward(context)); // [B, H]
        for layer in &self.value[1..] {
            v = self.act(layer.forward(v));
        }
        let value = self.value_out.forward(v).reshape([b]); // [B]
        (logits, value)
    }

    /// The network as an exported policy (weights transposed to `[out, in]`).
    pub fn to_policy(&self, info: PolicyInfo) -> Result<Policy, PolicyError> {
        let mut tensors = Vec::new();
        let mut push = |name: &str, d: &Dense| {
            let (w, b) = d.to_out_in();
            let [inputs, outputs] = d.weight.val().dims();
            tensors.push((format!("{name}.weight"), vec![outputs, inputs], w));
            tensors.push((format!("{name}.bias"), vec![outputs], b));
        };
        push("embed", &self.embed);
        for (l, d) in self.score.iter().enumerate() {
            push(&format!("score.{l}"), d);
        }
        push("score.out", &self.score_out);
        for (l, d) in self.value.iter().enumerate() {
            push(&format!("value.{l}"), d);
        }
        push("value.out", &self.value_out);
        Policy::from_tensors(
            PolicyInfo {
                arch: self.arch(),
                ..info
            },
            tensors,
            None,
        )
    }
}

/// Log-probabilities `[B, N]` of the masked logits.
pub fn log_probs(logits: Tensor<2>) -> Tensor<2> {
    log_softmax(logits, 1)
}
