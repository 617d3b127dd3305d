"""LeNet5 with batch normalisation and a choice of activation for the conv and the FC layers (PAPER.md §2.2).

The Theano-tutorial LeNet (LeCun et al. 1998) with batch normalisation before every hidden activation::

    (N, 1, 28, 28) conv 5x5 x20 -> BN -> act -> max-pool 2x2    (N, 20, 12, 12)
                   conv 5x5 x50 -> BN -> act -> max-pool 2x2    (N, 50, 4, 4)
                   flatten -> FC 1000 -> BN -> act              (N, 1000)
                   FC 10                                         (N, 10) logits (softmax in the loss)

The activations are named and built by the package's one factory, :func:`actadapt.get_activation` (the
paper's ``ReLU``, ``AReLU``, ``AGumb``, ``Sig``, ``Swish``, or any other name it knows). Adaptive ones have
one alpha per channel in the conv layers (20 and 50, along dim 1 of ``(N, C, H, W)``) and one per neuron in
the FC layer (1000). The layers before a batch norm have no bias (the norm's shift replaces it).

Speed: for a nondecreasing activation (of the paper's, every one but Swish) max-pooling and the activation commute, values
and gradients alike (the pooled maximum is the activation's maximum, at the same position, for any alpha), so
the conv blocks pool first and evaluate the activation on 4x fewer elements, as the Theano tutorial does
(conv -> pool -> bias -> tanh). The function computed is the one drawn above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

from torch import Tensor, nn

from ...activations import activation_spec, get_activation
from ..config import option

__all__ = ["LeNet5", "LeNetKeys"]


class LeNet5(nn.Module):
    r"""LeNet5 with batch norm; ``conv_act`` after both convolutions, ``fc_act`` after the hidden FC layer.

    Args:
        conv_act (str): activation of the conv layers, a name of :func:`actadapt.get_activation`.
            Default: ``"ReLU"``
        fc_act (str): activation of the hidden FC layer. Default: ``"ReLU"``
        in_channels (int): input channels. Default: ``1``
        image_size (int or (int, int)): input height and width. Default: ``28``
        num_classes (int): outputs. Default: ``10``
        channels ((int, int)): feature maps of the two conv layers. Default: ``(20, 50)``
        hidden (int): neurons of the hidden FC layer. Default: ``1000``
        alpha_init (float): initial alpha of the adaptive activations. Default: ``1.0``

    Shape:
        - Input: :math:`(N, C_{in}, H, W)` float
        - Output: :math:`(N, \text{num\_classes})` logits

    Example::

        >>> import torch
        >>> m = LeNet5("AReLU", "AGumb")
        >>> m(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 10])
        >>> [tuple(a.shape) for a in (m.act1.alpha, m.act2.alpha, m.act3.alpha)]
        [(20,), (50,), (1000,)]
    """

    def __init__(
        self,
        conv_act: str = "ReLU",
        fc_act: str = "ReLU",
        *,
        in_channels: int = 1,
        image_size=28,
        num_classes: int = 10,
        channels: Tuple[int, int] = (20, 50),
        hidden: int = 1000,
        alpha_init: float = 1.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        h, w = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        for _ in range(2):  # conv 5x5 (valid) then pool 2x2 (floor)
            h, w = (h - 4) // 2, (w - 4) // 2
        if h < 1 or w < 1:
            raise ValueError(
                f"image_size {image_size!r} is too small for two 5x5 convolutions and 2x2 poolings (need >= 16)"
            )
        c1, c2 = channels
        self.conv_act, self.fc_act = conv_act, fc_act
        act = {**kw, "dim": 1, "init": alpha_init}  # adaptive ones: one alpha per channel / neuron, on dim 1
        self.conv1 = nn.Conv2d(in_channels, c1, 5, bias=False, **kw)
        self.bn1 = nn.BatchNorm2d(c1, **kw)
        self.act1 = get_activation(conv_act, num_parameters=c1, **act)
        self.conv2 = nn.Conv2d(c1, c2, 5, bias=False, **kw)
        self.bn2 = nn.BatchNorm2d(c2, **kw)
        self.act2 = get_activation(conv_act, num_parameters=c2, **act)
        self.pool = nn.MaxPool2d(2)
        self.pool_first = activation_spec(conv_act).monotone  # pool(act(x)) == act(pool(x)): see the notes
        self.fc1 = nn.Linear(c2 * h * w, hidden, bias=False, **kw)
        self.bn3 = nn.BatchNorm1d(hidden, **kw)
        self.act3 = get_activation(fc_act, num_parameters=hidden, **act)
        self.fc2 = nn.Linear(hidden, num_classes, **kw)

    def forward(self, x: Tensor) -> Tensor:
        x = self._block(self.bn1(self.conv1(x)), self.act1)  # (N, 20, 24, 24) -> (N, 20, 12, 12)
        x = self._block(self.bn2(self.conv2(x)), self.act2)  # (N, 50, 8, 8) -> (N, 50, 4, 4)
        x = self.act3(self.bn3(self.fc1(x.flatten(1))))  # (N, 1000)
        return self.fc2(x)  # (N, 10)

    def _block(self, x: Tensor, act: nn.Module) -> Tensor:
        return act(self.pool(x)) if self.pool_first else self.pool(act(x))

    def extra_repr(self) -> str:
        return f"conv_act={self.conv_act!r}, fc_act={self.fc_act!r}"


@dataclass
class LeNetKeys:
    """The config keys of LeNet5's training (a table's config subclasses it); defaults: the paper's."""

    epochs: int = option(150, min=1, help="training epochs (paper: 150)")
    batch_size: int = option(100, min=2, help="minibatch size (paper: 100)")
    lr: float = option(0.01, min=0.0, help="SGD learning rate (paper: 0.01)")
    momentum: float = option(0.0, min=0.0, help="SGD momentum (paper: plain SGD, 0)")
    weight_decay: float = option(0.0, min=0.0, help="L2 weight decay on weights and biases (paper: none stated)")
    alpha_lr_scale: float = option(1.0, min=0.0, help="learning rate of rho (alpha = exp rho) relative to lr")
    eval_batch: int = option(1000, min=1, help="batch size of the evaluation passes")

    def lenet_optimizer(self, model: nn.Module):
        """SGD with alpha in its own group (learning rate ``lr x alpha_lr_scale``, no weight decay)."""
        import torch

        from ...training import param_groups

        groups = param_groups(model, lr=self.lr, alpha_lr=self.lr * self.alpha_lr_scale, weight_decay=self.weight_decay)
        return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum)

    def lenet_choices(self, alpha_init: float) -> Dict[str, str]:
        """What the model and its training do where the paper is silent (a report's choices section)."""
        return {
            "batch normalisation": "after each convolution and after the hidden FC layer, before the activation "
            "(conv -> BN -> act -> max-pool; FC -> BN -> act); no bias in the layers a norm follows",
            "alpha": "one per channel in the conv layers (20, 50), one per neuron in the FC layer (1000); "
            f"alpha = exp(rho), initial alpha {alpha_init:g}; Swish means the adaptive x*sigmoid(alpha x)",
            "optimiser": f"{'plain ' if not self.momentum else ''}SGD, lr {self.lr:g} (alpha: x{self.alpha_lr_scale:g}), "
            f"momentum {self.momentum:g}, weight decay {self.weight_decay:g} (none on alpha), batch {self.batch_size}, "
            "cross-entropy, no penalty",
            "initialisation": "PyTorch defaults (Kaiming-uniform conv/linear weights, BN weight 1 bias 0); every cell "
            "of a repeat starts from the same weights and sees the same minibatch order",
            "training error": "running error over each epoch's minibatches (train mode), as the epoch goes",
        }
