"""The registered models: parameter counts against their references, FLOPs counted by torch
against the UNet hand formula, a few real CPU training steps each, and --weights loading."""

import jsonschema
import pytest
import torch
from helpers import SMALL_TRAINING, read_results, run_main, run_script

from unetbench.core import registry
from unetbench.core.errors import UserError
from unetbench.models.flops import flops_per_sample
from unetbench.models.resunetpp import ResUNetPlusPlus
from unetbench.models.unet import UNet, count_parameters
from unetbench.models.weights import load_weights
from unetbench.report.validate import load_schema


def test_resunetpp_matches_the_reference_parameter_counts():
    # DebeshJha/ResUNetPlusPlus, resunet++_pytorch.py (build_resunetplusplus, filters 16..256):
    # 4,062,993 parameters with its 1-class output; a 1x1 head from 16 channels adds 17 per class.
    assert count_parameters(ResUNetPlusPlus(3, 1)) == 4_062_993
    assert count_parameters(ResUNetPlusPlus(3, 13)) == 4_063_197


def test_deeplab_matches_torchvision_without_downloading():
    from unetbench.models.deeplab import DeepLabV3ResNet101, torchvision_deeplab
    with torch.device("meta"):
        assert count_parameters(DeepLabV3ResNet101(3, 21)) == 58_630_997
        assert count_parameters(torchvision_deeplab(21, aux_loss=True)) == 60_996_202


def test_deeplab_refuses_another_width():
    from unetbench.models.deeplab import DeepLabV3ResNet101
    with pytest.raises(UserError, match="leave --model-width at 64"):
        DeepLabV3ResNet101(3, 2, 8)


def unet_formula(height: int, width: int, num_classes: int = 20, in_channels: int = 3, base: int = 64) -> float:
    """The seed UNet's training FLOPs (forward + backward = 3x forward) for one sample, by hand,
    counting a multiply-add as 2: the independent check of the FLOP counter.

    Convolutions and transposed convolutions only; BatchNorm, ReLU, pooling and the loss are
    bandwidth-bound and negligible in FLOPs. 384x512, 20 classes: about 868 GFLOP.
    """
    w = [base * 2**i for i in range(5)]
    pixels = [height * width // 4**i for i in range(5)]
    macs = 0
    macs += pixels[0] * 9 * (in_channels * w[0] + w[0] * w[0])            # inc
    for i in range(4):                                                     # encoder
        macs += pixels[i + 1] * 9 * (w[i] * w[i + 1] + w[i + 1] * w[i + 1])
    for i in range(4):                                                     # decoder
        macs += pixels[i + 1] * 4 * w[i + 1] * w[i]                        # 2x2 transposed conv, stride 2
        macs += pixels[i] * 9 * (2 * w[i] * w[i] + w[i] * w[i])           # DoubleConv(2w -> w -> w)
    macs += pixels[0] * w[0] * num_classes                                 # 1x1 head
    return 3 * 2 * float(macs)


def test_the_unet_formula_gives_the_documented_868_gflop():
    assert unet_formula(384, 512, 20) / 1e9 == pytest.approx(868, abs=1)


@pytest.mark.parametrize("crop,classes", [((384, 512), 20), ((64, 96), 13)])
def test_flop_counter_agrees_with_the_unet_formula(crop, classes):
    counted, formula = flops_per_sample("unet", *crop, classes), unet_formula(*crop, classes)
    # the first convolution has no input gradient: the counter is that much (0.08%) below
    assert counted < formula and counted == pytest.approx(formula, rel=2e-3)


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name.startswith("deeplab") else name
                                  for name in registry.MODELS])   # deeplab's count alone takes seconds
def test_flops_of_every_model_scale_with_pixels(name):
    small, large = flops_per_sample(name, 64, 96, 2), flops_per_sample(name, 128, 192, 2)
    assert small > 0 and large == pytest.approx(4 * small, rel=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("model,width", [("resunetpp", "8"), ("deeplabv3_resnet101", "64")])
def test_each_model_trains_a_few_steps_on_cpu(model, width, tiny_splits, tmp_path):
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "1",
                       "--max-steps-per-epoch", "2", *SMALL_TRAINING, "--batch-size", "2", "--model", model,
                       "--model-width", width, "--overlay-images", "0"], timeout=600)
    assert proc.returncode == 0, proc.stderr
    results = read_results(tmp_path)
    jsonschema.validate(results, load_schema())
    assert results["status"] == "completed" and results["model"]["key"] == model
    assert results["dataset"]["name"] == "synthetic" and results["dataset"]["resize"] == "none"
    assert results["model"]["gflop_per_sample"] > 0 and results["timing"]["steady_samples_per_s"] > 0
    assert results["test"]["per_class"]


def test_weights_of_the_same_model_load_and_change_the_model(tmp_path):
    source, target = ResUNetPlusPlus(3, 2, 8), ResUNetPlusPlus(3, 2, 8)
    path = tmp_path / "w.pth"
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    note = load_weights(target, str(path), "resunetpp", 2)
    assert "loaded" in note
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_an_output_layer_for_other_classes_is_reinitialised(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(UNet(3, 20, 8).state_dict(), path)
    model = UNet(3, 2, 8)
    before = model.head.weight.clone()
    note = load_weights(model, str(path), "unet", 2)
    assert "re-initialised for 2 classes" in note and torch.equal(model.head.weight, before)


def test_a_tensor_of_another_rank_is_refused_naming_it(tmp_path):
    state = UNet(3, 2, 8).state_dict()
    key = next(k for k in state if k.endswith("num_batches_tracked"))
    state[key] = state[key].reshape(1)        # a scalar saved as a 1-element vector by another tool
    path = tmp_path / "w.pth"
    torch.save(state, path)
    with pytest.raises(UserError, match=rf"tensor {key} is \(1,\) but the unet model's is \(\)"):
        load_weights(UNet(3, 2, 8), str(path), "unet", 2)


def test_weights_of_another_model_are_refused_naming_it(tmp_path):
    path = tmp_path / "unet.pth"
    torch.save(UNet(3, 2, 8).state_dict(), path)
    with pytest.raises(UserError, match="holds a unet model's weights, not the resunetpp model's"):
        load_weights(ResUNetPlusPlus(3, 2, 8), str(path), "resunetpp", 2)


@pytest.mark.slow  # two ResNet-101s built and one saved: seconds
def test_an_imagenet_resnet101_loads_as_the_deeplab_backbone(tmp_path):
    import torchvision

    from unetbench.models.deeplab import DeepLabV3ResNet101
    resnet = torchvision.models.resnet101(weights=None)
    path = tmp_path / "resnet101.pth"
    torch.save(resnet.state_dict(), path)
    model = DeepLabV3ResNet101(3, 2)
    note = load_weights(model, str(path), "deeplabv3_resnet101", 2)
    assert "into net.backbone" in note and "fc" in note
    assert torch.equal(model.net.backbone.layer4[2].conv3.weight, resnet.layer4[2].conv3.weight)


@pytest.mark.slow  # unet_cpu.py in a subprocess: torch imported again
def test_a_bad_weights_file_is_one_clear_line(tiny_splits, tmp_path):
    bad = tmp_path / "notes.pth"
    bad.write_text("not weights")
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path / "out", "--epochs", "1",
                       *SMALL_TRAINING, "--weights", bad])
    assert proc.returncode == 2 and "--weights" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out" / "results_cpu.json").exists()


@pytest.mark.slow  # unet_cpu.py in a subprocess: torch imported again
def test_a_weights_file_of_another_model_stops_the_run_before_training(tiny_splits, tmp_path):
    path = tmp_path / "unet.pth"
    torch.save(UNet(3, 13, 8).state_dict(), path)
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path / "out", "--epochs", "1",
                       *SMALL_TRAINING, "--model", "resunetpp", "--weights", path])
    assert proc.returncode == 2 and "unet model's weights" in proc.stderr and "Traceback" not in proc.stderr


def test_a_crop_the_model_cannot_take_is_refused(tmp_path, capsys):
    from unetbench.training.bench import main
    code, _, err = run_main(main, ["--backend", "cpu", "--model", "resunetpp", "--crop", "36x48", "--steps", "1",
                                   "--out", tmp_path], capsys)
    assert code == 2 and "multiples of 8" in err


@pytest.mark.slow  # unet_cpu.py in a subprocess: torch imported again
def test_deeplab_with_one_sample_per_device_is_one_clear_line(tiny_splits, tmp_path):
    proc = run_script(["unet_cpu.py", "--splits", tiny_splits, "--out", tmp_path, "--epochs", "1",
                       *SMALL_TRAINING, "--model", "deeplabv3_resnet101", "--model-width", "64", "--batch-size", "1"])
    assert proc.returncode == 2 and "--batch-size 2 or more" in proc.stderr and "Traceback" not in proc.stderr
