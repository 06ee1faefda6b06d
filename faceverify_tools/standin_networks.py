"""The production networks' architectures in PyTorch, for the stand-in packs (build tool only).

- `iresnet50()`: the recognizer of buffalo_l (`w600k_r50`), with the layer layout of insightface's
  arcface_torch `backbones/iresnet.py` `iresnet50` (IBasicBlock, layers [3, 4, 14, 3], BN-dropout-FC
  to 512, BatchNorm1d "features").
- `SCRFD(SCRFD_CONFIGS["10g"])`: the detector of buffalo_l (`det_10g`), from insightface's published
  config `detection/scrfd/configs/scrfd/scrfd_10g_bnkps.py`: a ResNetV1e backbone (deep stem, 2x2
  max pool, average-pool downsampling), a PAFPN neck and the SCRFD head with keypoints, 2 anchors per
  place at strides 8, 16 and 32, exported as InsightFace's ONNX files are: 9 outputs (scores, boxes,
  keypoints per stride), each (places x anchors, 1 | 4 | 10).
  `SCRFD_CONFIGS["2.5g"]` is the test pack's detector from `scrfd_2.5g_bnkps.py`; the builder
  (faceverify_tools/standin.py) loads det_2.5g.onnx's weights into it to check this code.

Weights are random. Needs PyTorch, which is a build tool here, never a runtime or test dependency.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# --- the recognizer: arcface_torch IResNet ---------------------------------------------------------


class IBasicBlock(nn.Module):
    """arcface_torch's residual block: BN, conv3x3, BN, PReLU, conv3x3 (stride here), BN, plus the shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (self.downsample(x) if self.downsample is not None else x)


class IResNet(nn.Module):
    """arcface_torch's IResNet for 112x112 faces: conv-BN-PReLU stem, four stride-2 stages, BN,
    flatten, dropout, FC to `num_features`, BatchNorm1d."""

    fc_scale = 7 * 7

    def __init__(self, layers: list[int], num_features: int = 512) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-05)
        self.prelu = nn.PReLU(64)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1])
        self.layer3 = self._make_layer(256, layers[2])
        self.layer4 = self._make_layer(512, layers[3])
        self.bn2 = nn.BatchNorm2d(512, eps=1e-05)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512 * self.fc_scale, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, 2, bias=False), nn.BatchNorm2d(planes, eps=1e-05))
        layers = [IBasicBlock(self.inplanes, planes, 2, downsample)]
        self.inplanes = planes
        layers += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet50(num_features: int = 512) -> IResNet:
    """w600k_r50's architecture: IResNet with layers [3, 4, 14, 3] and a 512-d output."""
    return IResNet([3, 4, 14, 3], num_features)


# --- the detector: SCRFD (ResNetV1e + PAFPN + SCRFDHead), as in insightface's detection/scrfd ---------

SCRFD_CONFIGS: dict[str, dict] = {
    # detection/scrfd/configs/scrfd/scrfd_10g_bnkps.py (det_10g in buffalo_l)
    "10g": {"stage_blocks": (3, 4, 2, 3), "stage_planes": (56, 88, 88, 224), "base_channels": 56,
            "neck_channels": 56, "stacked_convs": 3, "feat_channels": 80},
    # detection/scrfd/configs/scrfd/scrfd_2.5g_bnkps.py (det_2.5g, the test pack's detector)
    "2.5g": {"stage_blocks": (3, 5, 3, 2), "stage_planes": (24, 48, 48, 80), "base_channels": 24,
             "neck_channels": 24, "stacked_convs": 2, "feat_channels": 64},
}
STRIDES = (8, 16, 32)
ANCHORS = 2  # anchor scales [1, 2], one ratio


class ConvModule(nn.Sequential):
    """mmcv's ConvModule: a convolution, then BN when `norm` (the convolution has no bias then), then ReLU when `act`."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: bool = True, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(cout))
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class BasicBlock(nn.Module):
    """mmdet's ResNet BasicBlock; its downsampling shortcut is ResNetV1e's average pool and 1x1 conv."""

    def __init__(self, inplanes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvModule(inplanes, planes, 3, stride)
        self.conv2 = ConvModule(planes, planes, 3, act=False)
        self.downsample: nn.Module | None = None
        if stride != 1 or inplanes != planes:
            pool = [nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)] if stride != 1 else []
            self.downsample = nn.Sequential(*pool, ConvModule(inplanes, planes, 1, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNetV1e(nn.Module):
    """mmdet-style ResNetV1e: a deep stem (three 3x3 convs), a 2x2 max pool (no_pool33), then four
    stages of BasicBlocks at strides 1, 2, 2, 2; returns every stage's output."""

    def __init__(self, stage_blocks: tuple[int, ...], stage_planes: tuple[int, ...], base_channels: int) -> None:
        super().__init__()
        half = base_channels // 2
        self.stem = nn.Sequential(ConvModule(3, half, 3, 2), ConvModule(half, half, 3), ConvModule(half, base_channels, 3))
        self.maxpool = nn.MaxPool2d(2, 2, 0)
        stages, inplanes = [], base_channels
        for index, (blocks, planes) in enumerate(zip(stage_blocks, stage_planes)):
            stride = 1 if index == 0 else 2
            stages.append(nn.Sequential(*[BasicBlock(inplanes if i == 0 else planes, planes, stride if i == 0 else 1) for i in range(blocks)]))
            inplanes = planes
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.stem(x))
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs


class PAFPN(nn.Module):
    """mmdet's PAFPN from `start_level` 1 with as many outputs as levels used (3, no extra convs):
    1x1 laterals, nearest top-down sums, 3x3 FPN convs, stride-2 bottom-up convs and 3x3 PAFPN convs,
    all with bias and no norm or activation."""

    def __init__(self, in_channels: list[int], out_channels: int) -> None:
        super().__init__()
        levels = len(in_channels)
        self.laterals = nn.ModuleList(ConvModule(c, out_channels, 1, norm=False, act=False) for c in in_channels)
        self.fpn_convs = nn.ModuleList(ConvModule(out_channels, out_channels, 3, norm=False, act=False) for _ in range(levels))
        self.downsample_convs = nn.ModuleList(ConvModule(out_channels, out_channels, 3, 2, norm=False, act=False) for _ in range(levels - 1))
        self.pafpn_convs = nn.ModuleList(ConvModule(out_channels, out_channels, 3, norm=False, act=False) for _ in range(levels - 1))

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        laterals = [conv(x) for conv, x in zip(self.laterals, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], mode="nearest")
        inter = [conv(x) for conv, x in zip(self.fpn_convs, laterals)]
        for i, conv in enumerate(self.downsample_convs):
            inter[i + 1] = inter[i + 1] + conv(inter[i])
        return [inter[0]] + [conv(x) for conv, x in zip(self.pafpn_convs, inter[1:])]


class SCRFDHead(nn.Module):
    """The SCRFD head with keypoints: per stride (strides_share=False) `stacked_convs` conv-BN-ReLU
    shared by classification and regression (cls_reg_share), then 3x3 convs to scores, boxes (times
    a learnt scale, scale_mode 2) and five keypoints, for `ANCHORS` anchors per place."""

    def __init__(self, in_channels: int, stacked_convs: int, feat_channels: int) -> None:
        super().__init__()
        self.towers = nn.ModuleList(
            nn.Sequential(*[ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3) for i in range(stacked_convs)])
            for _ in STRIDES)
        self.cls = nn.ModuleList(nn.Conv2d(feat_channels, ANCHORS, 3, 1, 1) for _ in STRIDES)
        self.reg = nn.ModuleList(nn.Conv2d(feat_channels, 4 * ANCHORS, 3, 1, 1) for _ in STRIDES)
        self.kps = nn.ModuleList(nn.Conv2d(feat_channels, 10 * ANCHORS, 3, 1, 1) for _ in STRIDES)
        self.scales = nn.ParameterList(nn.Parameter(torch.tensor(1.0)) for _ in STRIDES)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        scores, boxes, points = [], [], []
        for i, x in enumerate(feats):
            x = self.towers[i](x)
            # As InsightFace's ONNX files: (1, C, H, W) -> (H * W * anchors, C / anchors), scores through a sigmoid.
            scores.append(self.cls[i](x).permute(2, 3, 0, 1).reshape(-1, 1).sigmoid())
            boxes.append((self.reg[i](x) * self.scales[i]).permute(2, 3, 0, 1).reshape(-1, 4))
            points.append(self.kps[i](x).permute(2, 3, 0, 1).reshape(-1, 10))
        return scores + boxes + points


class SCRFD(nn.Module):
    """An SCRFD detector with keypoints from one of SCRFD_CONFIGS: input (1, 3, H, W), 9 outputs."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        self.backbone = ResNetV1e(config["stage_blocks"], config["stage_planes"], config["base_channels"])
        self.neck = PAFPN(list(config["stage_planes"][1:]), config["neck_channels"])
        self.head = SCRFDHead(config["neck_channels"], config["stacked_convs"], config["feat_channels"])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.head(self.neck(self.backbone(x)[1:])))


# --- random weights that behave like trained ones ----------------------------------------------------


def randomize(model: nn.Module, calibration_input: torch.Tensor, seed: int) -> nn.Module:
    """Random weights (Kaiming-normal convolutions and FC, seeded), then every BatchNorm's running
    statistics set from one pass over `calibration_input`, so activations stay of unit scale through
    the whole network (no overflow, no denormal numbers that would slow a CPU down). Returns the
    model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.01)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
                module.momentum = None  # a cumulative average: after one pass, that pass's statistics
        model.train()
        model(calibration_input)
        model.eval()
    return model


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every ConvModule's BN into its convolution (as InsightFace's SCRFD ONNX files are)."""
    for module in model.modules():
        if isinstance(module, ConvModule) and isinstance(module[1] if len(module) > 1 else None, nn.BatchNorm2d):
            module[0] = torch.nn.utils.fusion.fuse_conv_bn_eval(module[0], module[1])
            module[1] = nn.Identity()
    return model


def forward_with_hook(model: nn.Module, example: torch.Tensor, kinds: tuple[type, ...], hook) -> None:
    """One forward pass of `example` with `hook(module, inputs, output)` on every module of `kinds`."""
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in hooks:
            handle.remove()


def convolutions_in_order(model: nn.Module, example: torch.Tensor) -> list[nn.Conv2d]:
    """The model's convolutions in the order one forward pass runs them."""
    order: list[nn.Conv2d] = []
    forward_with_hook(model, example, (nn.Conv2d,), lambda module, *_: order.append(module))
    return order


def multiply_accumulates(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulate operations of one forward pass through the convolutions and FC layers
    (the unit of the "FLOPs" that the SCRFD and arcface_torch papers quote)."""
    total = 0

    def count(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            total += output.numel() * module.weight[0].numel()
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    forward_with_hook(model, example, (nn.Conv2d, nn.Linear), count)
    return total
