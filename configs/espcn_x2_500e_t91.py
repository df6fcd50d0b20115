# ESPCN x2 on the luma channel, trained on T91, evaluated on Set5 (see _base_/espcn_t91_set5.py).
_base_ = ['./_base_/espcn_t91_set5.py']
scale = 2
model = dict(scale=scale)
train_dataloader = dict(dataset=dict(scale=scale))
val_dataloader = dict(dataset=dict(scale=scale))
test_dataloader = val_dataloader
val_evaluator = dict(scale=scale)
test_evaluator = val_evaluator
