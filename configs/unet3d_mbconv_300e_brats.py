# The same network and weights layout as unet3d_revmbconv_300e_brats.py with reversibility switched off
# (autograd stores every activation): the baseline of benchmarks/reversible_memory.py.
_base_ = ['./unet3d_revmbconv_300e_brats.py']
model = dict(backbone=dict(reversible=False), head=dict(reversible=False))
