"""CK response on therapy (REF-1, MON-1, PT-1): one definition of "normal", "rising", "response".

The guideline's target is CK in the low-normal range; "refractory" is an inadequate response
after 4-6 weeks. The definitions, shared by every rule that speaks of the CK course:

- upper limit (ULN): the result's own reference range, else `ck_upper_limit_default`;
- within normal: latest CK <= its ULN;
- rising: latest CK above its ULN AND more than `ck_rise_fraction` above the previous CK
  (an uptick that stays within the normal range is never "rising");
- response: within normal, or fallen at least `ck_fall_fraction` from a peak that was above
  its own ULN, and not rising;
- inadequate response: latest CK above its ULN and no response.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from cds_service.guideline.facts import (
    RuleContext,
    fmt_date,
    fmt_num,
    qualified,
    ref,
    series,
    trend_table,
    upper_limit,
    valued,
)
from fhir_mappings.domain import Measurement


@dataclass(frozen=True)
class CkTrend:
    """The CK series judged against its reference range and its peak."""

    items: tuple[Measurement, ...]
    latest: Measurement
    uln: float | None
    uln_source: str
    peak: Measurement
    peak_uln: float | None
    rise_fraction: float
    fall_fraction: float
    skipped: tuple[Measurement, ...] = ()

    @property
    def value(self) -> float:
        return self.latest.value or 0.0

    @property
    def previous(self) -> Measurement | None:
        return self.items[-2] if len(self.items) > 1 else None

    @property
    def above(self) -> bool:
        """Latest CK above its upper limit of normal."""
        return self.uln is not None and self.value > self.uln

    @property
    def within_normal(self) -> bool:
        return self.uln is not None and self.value <= self.uln

    @property
    def rising(self) -> bool:
        """Above the upper limit and more than the site's fraction above the previous CK."""
        prev = self.previous
        return bool(
            self.above
            and prev is not None
            and prev.value
            and self.value > prev.value * (1 + self.rise_fraction)
        )

    @property
    def peak_above(self) -> bool:
        """The highest CK on record was above its own upper limit (inflammation shown)."""
        return self.peak_uln is not None and (self.peak.value or 0.0) > self.peak_uln

    @property
    def fallen(self) -> float:
        """Fraction the latest CK lies below the peak (0 when at or above it)."""
        peak = self.peak.value or 0.0
        return max(0.0, (peak - self.value) / peak) if peak > 0 else 0.0

    @property
    def fallen_enough(self) -> bool:
        return self.peak_above and self.fallen >= self.fall_fraction

    @property
    def responded(self) -> bool:
        """Within normal, or fallen at least the site's fraction from an abnormal peak."""
        return self.within_normal or (self.fallen_enough and not self.rising)

    @property
    def inadequate(self) -> bool:
        """Above the upper limit with neither a normal CK nor the site's fall from the peak."""
        return self.above and not self.responded

    @cached_property  # a frozen value: its texts are built once, however many rules quote it
    def inputs(self) -> tuple[str, ...]:
        return tuple(ref(m, "CK") for m in self.items)

    @property
    def uses_default_uln(self) -> bool:
        return self.uln_source.startswith("site")

    def measured(self) -> str:
        """What was measured, in one sentence: latest vs ULN, the peak and the fall from it."""
        return self._measured

    @cached_property
    def _measured(self) -> str:
        latest = (
            f"Latest CK {fmt_num(self.value)} U/L ({fmt_date(self.latest.effective)}); upper "
            f"limit of normal {fmt_num(self.uln)} U/L ({self.uln_source})"
        )
        if self.uln is None:
            position = "no upper limit is known"
        elif self.within_normal:
            position = "within the normal range"
        else:
            position = f"{self.value / self.uln:.1f} x the upper limit"
        peak = ""
        if self.peak is not self.latest:
            peak = (
                f"; peak {fmt_num(self.peak.value)} U/L ({fmt_date(self.peak.effective)}), "
                f"{self.fallen:.0%} below the peak"
            )
        change = ""
        prev = self.previous
        if prev is not None and prev.value:
            pct = (self.value - prev.value) / prev.value
            change = f"; {'+' if pct >= 0 else ''}{pct:.0%} vs the previous CK"
        return f"{latest}: {position}{peak}{change}."

    def definitions(self) -> str:
        """The definitions applied, with the site's numbers (said on the card)."""
        return (
            f'"Rising" means above the upper limit and more than {self.rise_fraction:.0%} above '
            f'the previous CK; "response" means within normal, or at least '
            f"{self.fall_fraction:.0%} below a peak that was above its upper limit "
            "(local policy)."
        )

    def block(self) -> str:
        """The CK trend table, its upper limit and any result not usable (said on the card)."""
        return self._block

    @cached_property
    def _block(self) -> str:
        unusable = "".join(
            f"\n\nNot usable: {qualified('Observation', m.resource_id)} "
            f"({m.unusable_reason or 'no numeric value'})"
            for m in self.skipped
        )
        return (
            "CK trend:\n"
            + trend_table(self.items[-6:], "CK")
            + f"\n\nUpper limit of normal: {fmt_num(self.uln)} U/L ({self.uln_source})."
            + unusable
        )


def ck_trend(ctx: RuleContext) -> CkTrend | None:
    """The CK series with its upper limit (own range, else site default), peak and direction."""
    return ctx.remembered("ck_trend", lambda: _ck_trend(ctx))


def _ck_trend(ctx: RuleContext) -> CkTrend | None:
    every = series(ctx.state, ctx.knowledge.kinds("ck_kinds"))
    items = valued(every)
    if not items:
        return None
    # valued() keeps the same objects: by identity, linear (by equality, quadratic at 10,000).
    kept = {id(m) for m in items}
    skipped = tuple(m for m in every if id(m) not in kept)
    default = ctx.knowledge.p("ck_upper_limit_default")
    latest = items[-1]
    uln, source = upper_limit(latest, default)
    peak = max(items, key=lambda m: m.value or 0.0)
    peak_uln, _ = upper_limit(peak, default)
    return CkTrend(
        items=items,
        latest=latest,
        uln=uln,
        uln_source=source,
        peak=peak,
        peak_uln=peak_uln,
        rise_fraction=ctx.knowledge.p("ck_rise_fraction"),
        fall_fraction=ctx.knowledge.p("ck_fall_fraction"),
        skipped=skipped,
    )


def ck_policy(trend: CkTrend | None) -> tuple[str, ...]:
    """The site-policy settings a CK judgement used (named on the card)."""
    used = ("ck_rise_fraction", "ck_fall_fraction")
    return (*used, "ck_upper_limit_default") if trend and trend.uses_default_uln else used
