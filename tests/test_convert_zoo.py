"""convert() on real architectures: eleven transformers models built from tiny configs (nothing downloaded).

For each: every activation call site is replaced (counted independently of convert by tests/activation_calls.py,
before and after), the model keeps its class, forward + backward + one optimiser step are finite and every
alpha gets a gradient, ``init="match"`` changes the outputs by less than the bound below, and the trained
state_dict loads into a fresh conversion with the same outputs.

The bound on the relative output change: a site whose new activation differs from the old one by at most
``e`` pointwise moves its output by at most ``e``; on activations of unit scale (batch norm statistics of the
inputs, PyTorch's default initialisation) and layers that do not amplify, the changes add up, so
``||y_new - y_old|| / ||y_old|| <= sum of the sites' max errors``; twice that allows for the amplification of
random weights, plus float32 rounding (1e-5) for the exact mappings (SiLU, sigmoid, tanh).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import actadapt
from actadapt import convert

from .activation_calls import activation_calls
from .replicas import calibrate

transformers = pytest.importorskip("transformers")
from transformers import activations as hf_acts  # noqa: E402

HF_ACTIVATIONS = tuple(
    getattr(hf_acts, n) for n in ("GELUActivation", "NewGELUActivation", "SiLUActivation", "FastGELUActivation",
                                  "QuickGELUActivation", "GELUTanh", "PytorchGELUTanh") if hasattr(hf_acts, n)
)


def _images(n=4, size=32):
    return (torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(1)),)


def _tokens(n=2, length=8, vocab=100):
    return (torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(1)),)


def _whisper_encoder():
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    cfg = transformers.WhisperConfig(num_mel_bins=8, d_model=16, encoder_layers=2, encoder_attention_heads=2,
                                     encoder_ffn_dim=32, max_source_positions=8)
    return WhisperEncoder(cfg), (torch.randn(2, 8, 16, generator=torch.Generator().manual_seed(1)),)


T = transformers
TEXT = dict(vocab_size=100, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=16)
DECODER = dict(TEXT, num_key_value_heads=1)
VISION = dict(image_size=16, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
              intermediate_size=32)

# name -> (builder of (model, inputs), number of activation call sites)
MODELS = {
    "ResNet-bottleneck": (lambda: (T.ResNetModel(T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                                                                 layer_type="bottleneck")), _images()), 7),
    "MobileNetV2": (lambda: (T.MobileNetV2Model(T.MobileNetV2Config(image_size=32, depth_multiplier=0.25)), _images()), 35),
    "ViT": (lambda: (T.ViTModel(T.ViTConfig(**VISION)), _images(size=16)), 3),
    "ConvNeXt": (lambda: (T.ConvNextModel(T.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, patch_size=2)),
                          _images(size=16)), 2),
    "GPT2": (lambda: (T.GPT2Model(T.GPT2Config(vocab_size=100, n_positions=16, n_embd=16, n_layer=2, n_head=2)), _tokens()), 2),
    "Llama": (lambda: (T.LlamaForCausalLM(T.LlamaConfig(**DECODER)), _tokens()), 2),
    "BERT": (lambda: (T.BertModel(T.BertConfig(**TEXT)), _tokens()), 3),
    "Whisper-encoder": (_whisper_encoder, 4),  # two F.gelu calls in WhisperEncoder.forward, two GELUActivation
    "DeiT": (lambda: (T.DeiTModel(T.DeiTConfig(**VISION)), _images(size=16)), 3),
    "EfficientNet": (lambda: (T.EfficientNetModel(T.EfficientNetConfig(image_size=32, width_coefficient=0.25,
                                                                       depth_coefficient=0.2, hidden_dim=320)), _images()), 29),
    "Qwen2": (lambda: (T.Qwen2ForCausalLM(T.Qwen2Config(**DECODER)), _tokens()), 2),
}


def _realistic(model: nn.Module, inputs) -> nn.Module:
    """PyTorch's default initialisation (transformers' std-0.02 one makes deep tiny models output ~0) and
    batch-norm statistics of the inputs: activations of unit scale, as in a trained model."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear, nn.Embedding)):
            m.reset_parameters()
    return calibrate(model, *inputs)


def _outputs(out):
    return [t for t in (out.values() if isinstance(out, dict) else out) if isinstance(t, torch.Tensor) and t.is_floating_point()]


@pytest.fixture(scope="module", params=list(MODELS))
def zoo(request):
    torch.manual_seed(0)
    build, sites = MODELS[request.param]
    model, inputs = build()
    return request.param, _realistic(model, inputs), inputs, sites


def test_every_call_site_is_replaced_and_the_outputs_barely_move(zoo):
    name, model, inputs, sites = zoo
    assert activation_calls(model, *inputs, extra_modules=HF_ACTIVATIONS) == (0, sites)
    result = convert(model, example_inputs=inputs)
    new = result.model
    assert type(new) is type(model) and len(result.replaced) == sites
    assert all(r.num_parameters is not None and r.num_parameters > 1 for r in result.replaced)
    assert activation_calls(new, *inputs, extra_modules=HF_ACTIVATIONS) == (sites, 0)
    bound = 2 * sum(r.max_error for r in result.replaced) + 1e-5
    with torch.no_grad():
        old_out, new_out = _outputs(model(*inputs)), _outputs(new(*inputs))
    change = sum(float((b - a).square().sum()) for a, b in zip(old_out, new_out)) ** 0.5
    change /= sum(float(a.square().sum()) for a in old_out) ** 0.5
    assert change == pytest.approx(result.output_change, rel=1e-3, abs=1e-6)
    assert change <= bound, (name, change, bound)


def test_trains_one_step_and_the_state_dict_round_trips(zoo):
    name, model, inputs, sites = zoo
    new = convert(model, example_inputs=inputs).model.train()
    opt = torch.optim.AdamW(actadapt.param_groups(new, lr=1e-3, alpha_lr=1e-2), lr=1e-3)
    # a fixed random projection of every output (a sum of squares of a batch-normalised output has no gradient)
    g = torch.Generator().manual_seed(2)
    largest_input = {}  # module name -> max |x| it saw
    modules = dict(new.named_modules())
    hooks = [modules[pname.rsplit(".", 1)[0]].register_forward_hook(
        lambda m, args, out, name=pname.rsplit(".", 1)[0]: largest_input.__setitem__(
            name, max(largest_input.get(name, 0.0), float(args[0].detach().abs().max()))))
        for pname, _ in actadapt.named_alpha_parameters(new)]
    loss = sum((t.float() * torch.randn(t.shape, generator=g)).mean() for t in _outputs(new(*inputs)))
    for h in hooks:
        h.remove()
    loss.backward()
    assert torch.isfinite(loss)
    alphas = list(actadapt.named_alpha_parameters(new))
    assert len(alphas) == sites
    for pname, p in alphas:
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        # d sigma / d alpha is O(x^2) near 0 (Swish: x^2 s'(alpha x)): a site whose inputs are all numerically 0
        # (EfficientNet's last depthwise activation sees |x| <= 3e-17 on these 1x1 maps) has a gradient under
        # FLT_MIN, which the float32 kernels flush to 0 by contract; every other site must get one
        if largest_input[pname.rsplit(".", 1)[0]] > 1e-6:
            assert p.grad.abs().sum() > 0, pname
    opt.step()
    assert all(torch.isfinite(p).all() for p in new.parameters())
    new.eval()
    fresh = convert(model, example_inputs=inputs).model.eval()
    fresh.load_state_dict(new.state_dict())
    with torch.no_grad():
        for a, b in zip(_outputs(fresh(*inputs)), _outputs(new(*inputs))):
            torch.testing.assert_close(a, b)
