"""Fix snippets shared by several checks, written for the user's own model."""

from __future__ import annotations

from lossdoctor.findings import Fix

_INIT = {
    "relu": ('nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # std = sqrt(2 / fan_in)',
             "He init"),
    "tanh": ('nn.init.xavier_normal_(m.weight, gain=nn.init.calculate_gain("tanh"))',
             "Xavier init with tanh gain"),
    "sigmoid": ("nn.init.xavier_normal_(m.weight)  # std = sqrt(2 / (fan_in + fan_out))",
                "Xavier init"),
    "linear": ('nn.init.kaiming_normal_(m.weight, nonlinearity="linear")  # std = 1/sqrt(fan_in)',
               "LeCun init"),
}


def init_name(family: str) -> str:
    """Human name of the init that keeps the signal's scale for an activation family."""
    return _INIT[family][1]


def reinit_fix(family: str) -> Fix:
    """Re-initialise linear and conv layers for the given activation family, zero the biases."""
    line, name = _INIT[family]
    return Fix(
        title=f"{name} for every linear/conv layer, zero biases",
        code=(
            "import torch.nn as nn\n\n"
            "for m in model.modules():\n"
            "    if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):\n"
            f"        {line}\n"
            "        if m.bias is not None:\n"
            "            nn.init.zeros_(m.bias)"
        ),
    )


def small_head_fix(last: str) -> Fix:
    """Shrink the last layer so the first predictions are close to uniform."""
    return Fix(
        title="start the output layer small so the first loss is near the chance level",
        code=(
            "import torch\n\n"
            "with torch.no_grad():\n"
            f'    model.get_submodule("{last}").weight.mul_(0.01)\n'
            f'    model.get_submodule("{last}").bias.zero_()'
        ),
    )
