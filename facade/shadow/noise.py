"""Which differences are real: a field's difference rate against its noise rate.

Some fields differ between any two answers — a timestamp, a request id, an order of
items nobody promised. They are found the way Diffy finds them: a sample of the safe
requests copied to the shadow is also sent to the primary a second time, and a field
that differs between two answers of the *same* backend is noise to that extent. A field
is reported only when its difference rate on primary-vs-shadow pairs exceeds its noise
rate by both thresholds:

- **absolute**: ``raw - noise > absolute`` (Diffy's default 0.03 %, as a fraction 0.0003)
- **relative**: ``(raw - noise) / noise > relative`` (default 20 %), when there is noise

Rates are per endpoint; an endpoint with fewer than ``MIN_NOISE`` noise pairs borrows
the rate of the same field over the route's other endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_NOISE = 5  # noise pairs an endpoint needs before its own noise rate is used
RELATIVE, ABSOLUTE = 0.20, 0.0003  # Diffy's defaults (20 %, 0.03 %), as fractions


@dataclass(frozen=True)
class Rates:
    differences: int  # primary-vs-shadow pairs in which the field differs
    compared: int  # primary-vs-shadow pairs
    noise_differences: int  # primary-vs-primary pairs in which it differs
    noise_compared: int  # primary-vs-primary pairs

    @property
    def rate(self) -> float:
        return self.differences / self.compared if self.compared else 0.0

    @property
    def noise_rate(self) -> float:
        return self.noise_differences / self.noise_compared if self.noise_compared else 0.0


def is_real(rates: Rates, relative: float = RELATIVE, absolute: float = ABSOLUTE) -> bool:
    raw, noise = rates.rate, rates.noise_rate
    if raw <= noise or raw - noise <= absolute:
        return False
    return noise == 0 or (raw - noise) / noise > relative


__all__ = ["ABSOLUTE", "MIN_NOISE", "RELATIVE", "Rates", "is_real"]
