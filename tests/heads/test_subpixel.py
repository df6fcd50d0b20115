"""The sub-pixel head: shape and the periodic shuffle's pixel arrangement (ESPCN eq. 4)."""
import pytest
import torch

from heads import SubPixelHead


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_output_is_scale_times_larger(scale):
    head = SubPixelHead([8], scale=scale, out_channels=3)
    out = head([torch.randn(2, 8, 5, 7)])
    assert out.shape == (2, 3, 5 * scale, 7 * scale)


def test_periodic_shuffle_places_channel_c_at_offset():
    head = SubPixelHead([4], scale=2, out_channels=1, kernel_size=1)
    with torch.no_grad():
        head.conv.weight.zero_()
        head.conv.bias.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    out = head([torch.zeros(1, 4, 1, 1)])
    # channel r*i + j lands at (i, j) of each r x r output block
    assert out[0, 0].tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_rejects_missing_inputs():
    with pytest.raises(ValueError, match='at least one'):
        SubPixelHead([], scale=2)
