"""The precision a run computes in: bf16 autocast where the hardware runs bf16 natively, fp32 elsewhere.

``amp`` (``train.amp``, ``predict --amp``) is ``auto`` (the default), ``on`` or ``off``:

- ``auto``: bf16 autocast on a CUDA GPU with bf16 (Ampere and later) and on a CPU with native
  bf16 units (Intel AMX / AVX512-BF16: Sapphire Rapids and later, AMD Zen 4 and later; Arm
  BF16), fp32 everywhere else (on an older CPU bf16 is emulated and slower than fp32);
- ``on``: bf16 autocast whatever the hardware; ``off``: fp32.

Under autocast the convolutions run in bf16; norms, softmax and the losses stay fp32 (torch's
autocast op lists, and the logits are cast to fp32 before any loss). :func:`choose_precision`
is the decision (pure, tested with the hardware mocked); :func:`native_bf16` asks torch about
the hardware. The choice and its reason go to the run log, ``meta.json`` and the prediction
manifest.

>>> p = resolve_precision("auto", "cpu")
>>> p.bf16, p.reason
(True, 'auto: this CPU has native bf16 (avx512_bf16, amx_bf16)')
>>> with p.autocast("cpu"):
...     logits = model(batch)
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from .errors import UserError

AMP_MODES = ("auto", "on", "off")
"""``amp`` settings: choose by hardware, always bf16, always fp32."""

_SPELLINGS = {"auto": "auto", "on": "on", "true": "on", "yes": "on", "1": "on", "off": "off", "false": "off", "no": "off", "0": "off"}


@dataclass(frozen=True)
class Precision:
    """What a run computes in.

    Args:
        bf16: forward passes under bf16 autocast (else fp32).
        reason: why, in words (e.g. ``auto: this CPU has native bf16 (amx_bf16)``).
    """

    bf16: bool
    reason: str

    @property
    def name(self) -> str:
        """``bf16`` or ``fp32``."""
        return "bf16" if self.bf16 else "fp32"

    def autocast(self, device_type: str):
        """The autocast context for ``device_type`` (``cpu``, ``cuda``): bf16 when :attr:`bf16`, else a no-op."""
        if not self.bf16:
            return nullcontext()
        import torch

        return torch.autocast(device_type, dtype=torch.bfloat16)

    def as_dict(self) -> dict:
        """``{"precision": "bf16"|"fp32", "precision_reason": ...}`` for logs and ``meta.json``."""
        return {"precision": self.name, "precision_reason": self.reason}


def parse_amp(value: Any, flag: str = "amp") -> str:
    """``auto``, ``on`` or ``off`` from a setting (``auto``, ``on``/``true``/``yes``, ``off``/``false``/``no``,
    or a bool), or a one-line :class:`UserError` naming ``flag``."""
    key = str(value).strip().lower()
    if isinstance(value, (bool, str)) and key in _SPELLINGS:
        return _SPELLINGS[key]
    raise UserError(f"{flag}={value!r} is not one of auto, true, false (or on, off); e.g. {flag}=auto")


def native_bf16(device_type: str) -> tuple[bool, str]:
    """Whether ``device_type`` (``cpu``, ``cuda``) has native bf16 units, and what says so.

    CPU: torch's own probes of the instruction set (AVX512-BF16, AMX tiles; oneDNN uses both);
    on Arm the ``bf16`` feature flag. CUDA: ``torch.cuda.is_bf16_supported()``.
    """
    import torch

    if device_type == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
        return ok, f"{torch.cuda.get_device_name()} has bf16" if ok else "this GPU has no native bf16 (before Ampere)"
    if device_type != "cpu":
        return False, f"no bf16 autocast used on {device_type}"
    flags = []
    cpu = getattr(torch, "cpu", None)
    for name, probe in (("avx512_bf16", "_is_avx512_bf16_supported"), ("amx_bf16", "_is_amx_tile_supported")):
        try:
            if getattr(cpu, probe)():
                flags.append(name)
        except (AttributeError, RuntimeError):
            pass
    if not flags:
        flags = _arm_bf16()
    if flags:
        return True, f"this CPU has native bf16 ({', '.join(flags)})"
    return False, "this CPU has no native bf16 (no avx512_bf16, amx_bf16 or Arm bf16): bf16 would be emulated, slower than fp32"


def _arm_bf16() -> list[str]:
    """``["bf16"]`` when /proc/cpuinfo lists the Arm BF16 feature, else ``[]``."""
    import platform

    if platform.machine().lower() not in ("aarch64", "arm64"):
        return []
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            words = set(f.read().split())
    except OSError:
        return []
    return ["bf16"] if "bf16" in words else []


def choose_precision(amp: str, device_type: str, native: tuple[bool, str]) -> Precision:
    """The precision for an ``amp`` setting on a device (pure: the hardware comes in as ``native``).

    Args:
        amp: ``auto``, ``on`` or ``off`` (:func:`parse_amp`).
        device_type: ``cpu``, ``cuda``, ...
        native: :func:`native_bf16` of that device: (has native bf16, what says so).
    """
    has, why = native
    if amp == "off":
        return Precision(False, "amp off: fp32")
    if amp == "on":
        return Precision(True, "amp on: bf16" + ("" if has else f" although {why}"))
    if device_type not in ("cpu", "cuda"):
        return Precision(False, f"auto: fp32 on {device_type}")
    return Precision(True, f"auto: {why}") if has else Precision(False, f"auto: fp32, {why}")


def resolve_precision(amp: Any, device: Any) -> Precision:
    """:func:`choose_precision` for ``amp`` (any :func:`parse_amp` spelling) on ``device`` (a torch
    device or its name), asking the hardware."""
    import torch

    mode = parse_amp(amp)
    device_type = torch.device(device).type
    native = native_bf16(device_type) if mode != "off" else (False, "")
    return choose_precision(mode, device_type, native)
