"""Reversible residual couplings (Gomez et al., 2017, "The Reversible Residual Network", section 3) as used by the
reversible 3D U-Net of Pendse et al. (section 2.2; after Brügger et al., 2019, "A Partially Reversible U-Net").

A block splits its channels in two halves and computes

    y1 = x1 + F(x2),    y2 = x2 + G(y1)          (inverse:  x2 = y2 - G(y1),   x1 = y1 - F(x2)).

A :class:`ReversibleSequence` of such blocks runs as one ``torch.autograd.Function``: the forward pass keeps no
intermediate activations (and frees the sequence's input tensor), the backward pass reconstructs every block's
input from its output and recomputes F and G one at a time to get the gradients (Gomez et al., Algorithm 1).
Stochastic layers see the same random numbers in the recomputation (the RNG state is recorded before each F and G
and replayed), and BatchNorm running statistics are not updated a second time. ``reversible=False`` runs the same
blocks as an ordinary ``nn.Sequential`` (same outputs, autograd stores activations), for checking and comparison.
In eval mode or without grad (inference, ONNX export, tracing) the plain forward is always used.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.batchnorm import _BatchNorm

from .layers3d import DropPath

RNGState = Tuple[torch.Tensor, Optional[torch.Tensor]]


class ReversibleBlock(nn.Module):
    """``y = (x1 + F(x2), x2 + G(x1 + F(x2)))`` on the two channel halves of ``x`` (``split_dim`` 1)."""

    def __init__(self, f: nn.Module, g: nn.Module, split_dim: int = 1) -> None:
        super().__init__()
        self.f, self.g, self.split_dim = f, g, split_dim

    def _halves(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.shape[self.split_dim] % 2:
            raise ValueError(f'a reversible block splits channels in two halves; got {x.shape[self.split_dim]} '
                             f'channels (odd) in an input of shape {tuple(x.shape)}')
        return torch.chunk(x, 2, dim=self.split_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self._halves(x)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=self.split_dim)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The block's input from its output (exact up to floating-point rounding)."""
        y1, y2 = self._halves(y)
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return torch.cat([x1, x2], dim=self.split_dim)

    @property
    def stochastic(self) -> bool:
        """Whether F or G draw random numbers in the current mode (dropout, stochastic depth)."""
        return any(m.training and getattr(m, 'p', 0) > 0 for m in self.modules()
                   if isinstance(m, (nn.modules.dropout._DropoutNd, DropPath)))


def _get_rng(device: torch.device) -> RNGState:
    cuda = torch.cuda.get_rng_state(device) if device.type == 'cuda' else None
    return torch.get_rng_state(), cuda


@contextmanager
def _replay_rng(state: Optional[RNGState], device: torch.device) -> Iterator[None]:
    """Run the body with the recorded RNG state; the caller's RNG state is left as it was."""
    if state is None:
        yield
        return
    devices = [device] if device.type == 'cuda' else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else 'cuda'):
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], device)
        yield


@contextmanager
def _bn_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Keep BatchNorm running statistics unchanged while ``module`` is recomputed in the backward pass."""
    saved = [(m, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
             for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats
             and m.running_mean is not None]
    try:
        yield
    finally:
        for m, mean, var, count in saved:  # through .data: autograd saved these buffers, keep their versions
            m.running_mean.data.copy_(mean)
            m.running_var.data.copy_(var)
            m.num_batches_tracked.data.copy_(count)


def _trainable(module: nn.Module) -> List[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def _saved_by_producer(x: torch.Tensor) -> bool:
    """Whether the autograd node that made ``x`` keeps ``x`` itself for its backward (e.g. ReLU keeps its result).

    Such a node would read the reconstructed values, which equal the originals only up to rounding: a ReLU
    would then see tiny non-zeros where its output was exactly 0 and pass gradients through them.
    """
    fn, ptr = x.grad_fn, x.untyped_storage().data_ptr()
    for name in dir(fn):
        if name.startswith('_saved_'):
            try:
                value = getattr(fn, name)
            except RuntimeError:  # already freed
                continue
            values = value if isinstance(value, (tuple, list)) else (value,)
            if any(isinstance(v, torch.Tensor) and v.untyped_storage().data_ptr() == ptr for v in values):
                return True
    return False


def _can_free(x: torch.Tensor) -> bool:
    """Free only tensors made by autograd ops that own their whole storage (not user inputs, not views) and that
    their producer does not keep for its own backward."""
    return (x.grad_fn is not None and x.is_contiguous() and x.storage_offset() == 0
            and x.untyped_storage().nbytes() == x.numel() * x.element_size() and not _saved_by_producer(x))



def _undo_coupling(fn, rng_state, known, result, grad_result, autocast):
    """One half of a coupling's inverse: recompute ``fn(known)`` with grad (replaying its RNG, BN statistics
    frozen, under the forward's autocast state), recover ``other = result - fn(known)`` and backpropagate
    ``grad_result`` through ``fn``. Returns (other, d known, fn's parameters, their gradients)."""
    params = _trainable(fn)
    device_type, dtype, enabled = autocast
    with torch.enable_grad(), _replay_rng(rng_state, known.device), _bn_stats_frozen(fn), \
            torch.autocast(device_type, dtype, enabled):
        leaf = known.detach().requires_grad_(True)
        out = fn(leaf)
    grads = torch.autograd.grad(out, [leaf] + params, grad_result, allow_unused=True)
    with torch.no_grad():
        other = result - out
    return other, grads[0], params, grads[1:]

class _ReversibleFunction(torch.autograd.Function):
    """Forward without storing activations; backward by inversion and block-wise recomputation."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, seq: 'ReversibleSequence', *params: torch.Tensor) -> torch.Tensor:
        ctx.seq = seq
        device_type = x.device.type
        # the recomputation in backward runs under the same autocast state as this forward pass
        ctx.autocast = (device_type, torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))
        ctx.rng: List[Tuple[Optional[RNGState], Optional[RNGState]]] = []
        y = x
        for block in seq.blocks:
            record = seq.preserve_rng_state and block.stochastic
            x1, x2 = block._halves(y)
            state_f = _get_rng(y.device) if record else None
            y1 = x1 + block.f(x2)
            state_g = _get_rng(y.device) if record else None
            y2 = x2 + block.g(y1)
            y = torch.cat([y1, y2], dim=block.split_dim)
            ctx.rng.append((state_f, state_g))
        ctx.freed = None
        if seq.free_input and len(seq.blocks) and _can_free(x):
            ctx.freed = x.data  # shares the storage, not the version counter: refilling it is not an in-place op
            ctx.freed_nbytes = x.untyped_storage().nbytes()
            x.untyped_storage().resize_(0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y: torch.Tensor):
        seq: ReversibleSequence = ctx.seq
        (y,) = ctx.saved_tensors
        params = [p for p in seq.parameters() if p.requires_grad]
        index = {id(p): i for i, p in enumerate(params)}
        param_grads: List[Optional[torch.Tensor]] = [None] * len(params)

        def accumulate(module_params: Sequence[nn.Parameter], grads: Sequence[Optional[torch.Tensor]]) -> None:
            for p, g in zip(module_params, grads):
                if g is None:
                    continue
                i = index[id(p)]
                param_grads[i] = g if param_grads[i] is None else param_grads[i] + g

        device_type, autocast_on, autocast_dtype = ctx.autocast
        y, dy = y.detach(), grad_y
        for block, (state_f, state_g) in zip(reversed(seq.blocks), reversed(ctx.rng)):
            y1, y2 = block._halves(y)
            dy1, dy2 = block._halves(dy)
            autocast = (device_type, autocast_dtype, autocast_on)
            # G(y1): recompute, invert x2 = y2 - G(y1), backpropagate dy2 through G
            x2, d_y1, g_params, g_grads = _undo_coupling(block.g, state_g, y1, y2, dy2, autocast)
            dz1 = dy1 + d_y1 if d_y1 is not None else dy1
            accumulate(g_params, g_grads)
            # F(x2): recompute, invert x1 = y1 - F(x2), backpropagate dz1 through F
            x1, d_x2, f_params, f_grads = _undo_coupling(block.f, state_f, x2, y1, dz1, autocast)
            dx2 = dy2 + d_x2 if d_x2 is not None else dy2
            accumulate(f_params, f_grads)
            y = torch.cat([x1, x2], dim=block.split_dim)
            dy = torch.cat([dz1, dx2], dim=block.split_dim)
        if ctx.freed is not None:  # give the input back its values before the layers below need them
            ctx.freed.untyped_storage().resize_(ctx.freed_nbytes)
            ctx.freed.copy_(y)
            ctx.freed = None
        return (dy, None, *param_grads)


class ReversibleSequence(nn.Module):
    """Reversible blocks run in sequence; ``reversible`` switches between the memory-saving Function and autograd.

    ``free_input=True`` releases the storage of the input tensor during the forward pass and refills it with the
    reconstruction in the backward pass: only safe when nothing else reads that tensor after this sequence in the
    forward pass (the encoder and decoder of :mod:`backbones.reversible_unet3d` guarantee it). Inputs that are
    leaves (user data) or views, or that their producer keeps for its backward (a ReLU output), are not freed.
    """

    def __init__(self, blocks: Iterable[ReversibleBlock], reversible: bool = True, free_input: bool = True,
                 preserve_rng_state: bool = True) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        for block in self.blocks:
            if not isinstance(block, ReversibleBlock):
                raise TypeError(f'ReversibleSequence takes ReversibleBlock modules, got {type(block).__name__}')
        self.reversible, self.free_input, self.preserve_rng_state = reversible, free_input, preserve_rng_state

    def uses_function(self, x: torch.Tensor) -> bool:
        """Whether this call runs the reversible Function (training with grad, not exporting or tracing)."""
        if not (self.reversible and self.training and torch.is_grad_enabled() and len(self.blocks)):
            return False
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
            return False
        return x.requires_grad or any(p.requires_grad for p in self.parameters())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.uses_function(x):
            return _ReversibleFunction.apply(x, self, *_trainable(self))
        for block in self.blocks:
            x = block(x)
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for block in reversed(self.blocks):
            y = block.inverse(y)
        return y


def set_reversible(module: nn.Module, reversible: bool) -> nn.Module:
    """Switch every :class:`ReversibleSequence` inside ``module`` on or off (the weights stay the same)."""
    for m in module.modules():
        if isinstance(m, ReversibleSequence):
            m.reversible = reversible
    return module


class HasReversibleStages:
    """Mixin for modules built from reversible stages (``self.stages``): a ``reversible`` switch for all of them."""

    @property
    def reversible(self) -> bool:
        return all(s.reversible for s in self.stages)

    @reversible.setter
    def reversible(self, value: bool) -> None:
        set_reversible(self, value)


__all__ = ['ReversibleBlock', 'ReversibleSequence', 'set_reversible', 'HasReversibleStages']
