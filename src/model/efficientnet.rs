//! EfficientNet (Lite0–4, B0–7) in tch, with the `efficientnet_pytorch` layer names.
//!
//! Variables live under exactly the names of the shipped checkpoints
//! (`_conv_stem.weight`, `_blocks.3._depthwise_conv.weight`, `_bn1.running_var`,
//! `_fc.bias`, ...), so those load without renaming; other layouts are mapped
//! onto these names in [`super::weights`].
//!
//! The forward pass is written out (no opaque `impl Module`) because the
//! explainers need its insides: any named layer's output can be captured for
//! GradCAM, and [`ForwardMode::DeepLift`] swaps every non-linearity for the
//! DeepLIFT Rescale rule (see `explain::deeplift`).

use tch::{nn, Kind, Tensor};

use super::config::{Activation, BlockConfig, EfficientNetConfig};

/// Batch-norm running-statistics momentum used while training. The TF
/// originals use 0.99 (= 0.01 here); fine-tuning on ~120 images gets only a
/// few dozen updates, and at 0.01 the running statistics still describe
/// ImageNet when evaluation starts (train-mode accuracy far above eval-mode).
/// PyTorch's default 0.1 lets them follow the new data. Inference is unaffected.
const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-3;
/// Below this input difference the Rescale multiplier falls back to the gradient.
const RESCALE_EPS: f64 = 1e-6;

/// How non-linearities are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// Ordinary network.
    Standard,
    /// DeepLIFT Rescale: the batch is `[inputs (n); baselines (n)]`. The first
    /// half's outputs keep their exact values while their gradients become the
    /// DeepLIFT multipliers relative to the matching baseline row.
    DeepLift { n: i64 },
}

/// A convolution with TensorFlow "SAME" padding computed from the actual input size
/// (identical to `Conv2dStaticSamePadding` at the native resolution).
#[derive(Debug)]
struct SameConv {
    conv: nn::Conv2D,
    kernel: i64,
    stride: i64,
}

impl SameConv {
    fn new(
        p: nn::Path,
        cin: i64,
        cout: i64,
        kernel: i64,
        stride: i64,
        groups: i64,
        bias: bool,
    ) -> Self {
        let cfg = nn::ConvConfig {
            stride,
            groups,
            bias,
            padding: 0,
            ..Default::default()
        };
        SameConv {
            conv: nn::conv2d(p, cin, cout, kernel, cfg),
            kernel,
            stride,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let size = xs.size();
        let (ih, iw) = (size[2], size[3]);
        let pad = |i: i64| {
            let o = (i + self.stride - 1) / self.stride;
            ((o - 1) * self.stride + self.kernel - i).max(0)
        };
        let (ph, pw) = (pad(ih), pad(iw));
        let xs = if ph > 0 || pw > 0 {
            xs.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
        } else {
            xs.shallow_clone()
        };
        xs.apply(&self.conv)
    }
}

fn batch_norm(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            momentum: BN_MOMENTUM,
            eps: BN_EPS,
            ..Default::default()
        },
    )
}

/// Element-wise non-linearities that DeepLIFT must rescale.
#[derive(Debug, Clone, Copy)]
enum Nonlinearity {
    Relu6,
    Silu,
    Sigmoid,
}

impl Nonlinearity {
    fn value(self, z: &Tensor) -> Tensor {
        match self {
            Nonlinearity::Relu6 => z.relu6(),
            Nonlinearity::Silu => z.silu(),
            Nonlinearity::Sigmoid => z.sigmoid(),
        }
    }

    /// Derivative, used where the Rescale quotient is 0/0.
    fn derivative(self, z: &Tensor) -> Tensor {
        match self {
            Nonlinearity::Relu6 => z.gt(0.0).logical_and(&z.lt(6.0)).to_kind(z.kind()),
            Nonlinearity::Silu => {
                let s = z.sigmoid();
                &s * (z * (1.0 - &s) + 1.0)
            }
            Nonlinearity::Sigmoid => {
                let s = z.sigmoid();
                &s * (1.0 - &s)
            }
        }
    }

    fn apply(self, z: &Tensor, mode: ForwardMode) -> Tensor {
        match mode {
            ForwardMode::Standard => self.value(z),
            ForwardMode::DeepLift { n } => {
                let zx = z.narrow(0, 0, n);
                let zb = z.narrow(0, n, n);
                let fx = self.value(&zx);
                let fb = self.value(&zb);
                let dz = &zx - &zb;
                // Multiplier m = Δf/Δz (gradient where Δz ≈ 0), treated as a constant.
                let m = tch::no_grad(|| {
                    let small = dz.abs().lt(RESCALE_EPS);
                    let safe = dz.where_scalarother(&small.logical_not(), 1.0);
                    let quotient = (&fx - &fb) / safe;
                    self.derivative(&zx).where_self(&small, &quotient)
                });
                // Value: exactly f(zx) up to rounding (the exact value is added
                // back so the forward output is not perturbed at all).
                let linear = &fb + &dz * &m;
                let out_x = &linear + (&fx - &linear).detach();
                Tensor::cat(&[out_x, fb], 0)
            }
        }
    }
}

fn activation_of(a: Activation) -> Nonlinearity {
    match a {
        Activation::Relu6 => Nonlinearity::Relu6,
        Activation::Silu => Nonlinearity::Silu,
    }
}

/// `a * b` for two input-dependent factors. Under DeepLIFT the difference from the
/// baseline is split with the Shapley rule for two players,
/// Δ(ab) = ½(a + a₀)Δb + ½(b + b₀)Δa, which is exact (completeness holds).
fn product(a: &Tensor, b: &Tensor, mode: ForwardMode) -> Tensor {
    match mode {
        ForwardMode::Standard => a * b,
        ForwardMode::DeepLift { n } => {
            let (ax, ab) = (a.narrow(0, 0, n), a.narrow(0, n, n));
            let (bx, bb) = (b.narrow(0, 0, n), b.narrow(0, n, n));
            let base = &ab * &bb;
            let mean_a = ((&ax + &ab) * 0.5).detach();
            let mean_b = ((&bx + &bb) * 0.5).detach();
            let linear = &base + &mean_a * (&bx - &bb) + &mean_b * (&ax - &ab);
            let exact = &ax * &bx;
            let out_x = &linear + (exact - &linear).detach();
            Tensor::cat(&[out_x, base], 0)
        }
    }
}

/// Records the output of one named layer during a forward pass.
#[derive(Debug, Default)]
pub struct Capture {
    pub layer: String,
    pub activation: Option<Tensor>,
}

impl Capture {
    pub fn new(layer: &str) -> Self {
        Capture {
            layer: layer.to_string(),
            activation: None,
        }
    }
}

fn offer(capture: &mut Option<&mut Capture>, name: &str, t: &Tensor) {
    if let Some(c) = capture.as_deref_mut() {
        if c.layer == name {
            c.activation = Some(t.shallow_clone());
        }
    }
}

#[derive(Debug)]
struct MbConv {
    index: usize,
    cfg: BlockConfig,
    expand: Option<(SameConv, nn::BatchNorm)>,
    depthwise: SameConv,
    bn1: nn::BatchNorm,
    se: Option<(SameConv, SameConv)>,
    project: SameConv,
    bn2: nn::BatchNorm,
}

impl MbConv {
    fn new(p: nn::Path, index: usize, cfg: BlockConfig) -> Self {
        let inp = cfg.input_filters;
        let oup = cfg.expanded_filters();
        let expand = (cfg.expand_ratio != 1).then(|| {
            (
                SameConv::new(&p / "_expand_conv", inp, oup, 1, 1, 1, false),
                batch_norm(&p / "_bn0", oup),
            )
        });
        let depthwise = SameConv::new(
            &p / "_depthwise_conv",
            oup,
            oup,
            cfg.kernel_size,
            cfg.stride,
            oup,
            false,
        );
        let bn1 = batch_norm(&p / "_bn1", oup);
        let se = cfg.se_channels.map(|sq| {
            (
                SameConv::new(&p / "_se_reduce", oup, sq, 1, 1, 1, true),
                SameConv::new(&p / "_se_expand", sq, oup, 1, 1, 1, true),
            )
        });
        let project = SameConv::new(
            &p / "_project_conv",
            oup,
            cfg.output_filters,
            1,
            1,
            1,
            false,
        );
        let bn2 = batch_norm(&p / "_bn2", cfg.output_filters);
        MbConv {
            index,
            cfg,
            expand,
            depthwise,
            bn1,
            se,
            project,
            bn2,
        }
    }

    fn forward(
        &self,
        inputs: &Tensor,
        act: Nonlinearity,
        train: bool,
        bn_train: bool,
        mode: ForwardMode,
        capture: &mut Option<&mut Capture>,
    ) -> Tensor {
        let name = |layer: &str| format!("_blocks.{}.{layer}", self.index);
        let mut x = inputs.shallow_clone();
        if let Some((conv, bn)) = &self.expand {
            let y = conv.forward(&x);
            offer(capture, &name("_expand_conv"), &y);
            x = act.apply(&y.apply_t(bn, bn_train), mode);
        }
        let y = self.depthwise.forward(&x);
        offer(capture, &name("_depthwise_conv"), &y);
        x = act.apply(&y.apply_t(&self.bn1, bn_train), mode);
        if let Some((reduce, expand)) = &self.se {
            let squeezed = x.adaptive_avg_pool2d([1, 1]);
            let squeezed = act.apply(&reduce.forward(&squeezed), mode);
            let gate = Nonlinearity::Sigmoid.apply(&expand.forward(&squeezed), mode);
            x = product(&gate, &x, mode);
        }
        let y = self.project.forward(&x);
        offer(capture, &name("_project_conv"), &y);
        let mut x = y.apply_t(&self.bn2, bn_train);
        if self.cfg.has_residual() {
            if train && self.cfg.drop_connect > 0.0 {
                x = drop_connect(&x, self.cfg.drop_connect);
            }
            x += inputs;
        }
        offer(capture, &format!("_blocks.{}", self.index), &x);
        x
    }
}

/// Stochastic depth: zero whole samples' residual branches with probability `p`.
fn drop_connect(xs: &Tensor, p: f64) -> Tensor {
    let keep = 1.0 - p;
    let b = xs.size()[0];
    let mask = (Tensor::rand([b, 1, 1, 1], (xs.kind(), xs.device())) + keep).floor();
    xs / keep * mask
}

/// The same values laid out NHWC ("channels last") behind the NCHW shape.
/// Convolutions follow their input's layout, and libtorch's CPU kernels for
/// channels-last (oneDNN) are faster on this network: Lite0, 16 images at
/// 224 px, 2 threads, measured here: training forward+backward 1.25 -> 1.03 s,
/// input gradient (IG, GradCAM) 0.95 -> 0.85 s, inference 0.28 -> 0.19 s.
/// Gradients reaching the caller keep the caller's layout.
///
/// CPU only. On CUDA the input is made contiguous NCHW, as in PyTorch:
/// channels-last depthwise convolutions take cuDNN's v8/v9 graph-API path
/// (run-time compiled engines), and an input with HWC strides made the first
/// explanation of a process 11.6 s against PyTorch's 1.1 s on an H100 (0.8 s
/// with the legacy API; benches/README.md, GPU).
fn channels_last(xs: &Tensor) -> Tensor {
    if xs.dim() == 4 && xs.device() == tch::Device::Cpu {
        xs.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
    } else {
        // Whatever layout the caller's tensor has, CUDA gets NCHW.
        xs.contiguous()
    }
}

/// EfficientNet with a replaceable classifier head (`_fc`).
#[derive(Debug)]
pub struct EfficientNet {
    pub config: EfficientNetConfig,
    /// Keep batch norm in inference mode while training (running statistics
    /// frozen, batch statistics unused): the usual choice for fine-tuning on a
    /// few hundred images, where batch-of-16 statistics are noise.
    pub frozen_batch_norm: bool,
    activation: Nonlinearity,
    conv_stem: SameConv,
    bn0: nn::BatchNorm,
    blocks: Vec<MbConv>,
    conv_head: SameConv,
    bn1: nn::BatchNorm,
    fc: nn::Linear,
}

/// The default GradCAM layer: the head convolution before pooling, as in the study.
pub const DEFAULT_CAM_LAYER: &str = "_conv_head";

impl EfficientNet {
    /// Builds the network under `p` (use `vs.root()` for checkpoint-compatible names).
    pub fn new(p: &nn::Path, config: EfficientNetConfig) -> Self {
        let stem = config.stem_filters();
        let head = config.head_filters();
        let conv_stem = SameConv::new(p / "_conv_stem", 3, stem, 3, 2, 1, false);
        let bn0 = batch_norm(p / "_bn0", stem);
        let block_cfgs = config.blocks();
        let last_out = block_cfgs.last().map(|b| b.output_filters).unwrap_or(stem);
        let blocks = block_cfgs
            .into_iter()
            .enumerate()
            .map(|(i, c)| MbConv::new(p / "_blocks" / i, i, c))
            .collect();
        let conv_head = SameConv::new(p / "_conv_head", last_out, head, 1, 1, 1, false);
        let bn1 = batch_norm(p / "_bn1", head);
        let fc = nn::linear(p / "_fc", head, config.num_classes, Default::default());
        EfficientNet {
            frozen_batch_norm: false,
            activation: activation_of(config.activation()),
            config,
            conv_stem,
            bn0,
            blocks,
            conv_head,
            bn1,
            fc,
        }
    }

    /// Logits `(N, num_classes)` for normalised inputs `(N, 3, H, W)`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward_with(xs, train, ForwardMode::Standard, None)
    }

    /// Full forward pass with an optional layer capture and DeepLIFT mode.
    pub fn forward_with(
        &self,
        xs: &Tensor,
        train: bool,
        mode: ForwardMode,
        mut capture: Option<&mut Capture>,
    ) -> Tensor {
        let act = self.activation;
        let bn_train = train && !self.frozen_batch_norm;
        let y = self.conv_stem.forward(&channels_last(xs));
        offer(&mut capture, "_conv_stem", &y);
        let mut x = act.apply(&y.apply_t(&self.bn0, bn_train), mode);
        for block in &self.blocks {
            x = block.forward(&x, act, train, bn_train, mode, &mut capture);
        }
        let y = self.conv_head.forward(&x);
        offer(&mut capture, "_conv_head", &y);
        let x = act.apply(&y.apply_t(&self.bn1, bn_train), mode);
        offer(&mut capture, "features", &x);
        let pooled = x.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        pooled.dropout(self.config.dropout, train).apply(&self.fc)
    }

    /// Every layer name [`Capture`] understands, input to output.
    pub fn layer_names(&self) -> Vec<String> {
        let mut names = vec!["_conv_stem".to_string()];
        for b in &self.blocks {
            if b.expand.is_some() {
                names.push(format!("_blocks.{}._expand_conv", b.index));
            }
            names.push(format!("_blocks.{}._depthwise_conv", b.index));
            names.push(format!("_blocks.{}._project_conv", b.index));
            names.push(format!("_blocks.{}", b.index));
        }
        names.push("_conv_head".to_string());
        names.push("features".to_string());
        names
    }

    /// Variable-name prefixes of the backbone (everything but the classifier).
    pub fn is_head_variable(name: &str) -> bool {
        name.starts_with("_fc.")
    }
}

/// Softmax probabilities in f32, a convenience for callers holding logits.
pub fn softmax(logits: &Tensor) -> Tensor {
    logits.softmax(-1, Kind::Float)
}
