"""Employment features: job loss (insured or not), returned migrant workers, current work status.

Events are dated by ``event_date``; windows are calendar months before T. A job loss whose
unemployment-insurance coverage is not recorded counts as uninsured: the platform cannot count on a
benefit it has no record of. A member's current status is their latest job (or migration) event
known at T; ties on the same day are broken by ``recorded_at`` and then event type, so row order never
matters.
"""

from __future__ import annotations

import numpy as np

from doudi.contract import EMPLOYMENT_EVENTS
from features.registry import feature
from features.snapshot import Columns, Snapshot, code_in, select_rows

_CODE = {name: EMPLOYMENT_EVENTS.index(name) for name in EMPLOYMENT_EVENTS}


def _events(snap: Snapshot, kind: str, months: int | None = None) -> Columns:
    table = snap.table("employment_events")
    mask = table["event_type"] == _CODE[kind]
    if months is not None:
        mask &= table["event_date"] >= snap.months_ago(months)
    return select_rows(table, mask)


def _current(snap: Snapshot, kinds: tuple[str, str]) -> Columns:
    """Each person's latest event among ``kinds`` known at T."""
    table = snap.table("employment_events")
    codes = [_CODE[k] for k in kinds]
    table = select_rows(table, code_in(table["event_type"], codes) & (table["_p"] >= 0))
    keys = (table["event_type"], table["recorded_at"], table["event_date"], table["_p"])
    ordered = table.take(np.lexsort(keys))  # stable: by person, then date, recorded_at, event type
    person = ordered["_p"]
    return ordered.take(np.append(person[1:] != person[:-1], True) if len(person) else person > 0)


@feature(name="job_losses_12m", group="employment", source=("employment_events",), window_months=12,
         unit="count", monotone=+1, fill=0.0,
         zh="近12个月家庭成员失去工作{value:.0f}次",
         en="Household members lost a job {value:.0f} times in the last 12 months",
         label_zh="失业次数", label_en="Job losses",
         description="job_loss events in the 12 months before T.")
def job_losses_12m(snap: Snapshot) -> np.ndarray:
    return snap.per_household(_events(snap, "job_loss", 12)["_h"])


@feature(name="uninsured_job_loss_6m", group="employment", source=("employment_events",), window_months=6,
         unit="count", monotone=+1, fill=0.0,
         zh="近6个月有{value:.0f}人次失业且没有失业保险",
         en="{value:.0f} job losses without unemployment insurance in the last 6 months",
         label_zh="无失业保险的失业", label_en="Uninsured job losses",
         description="job_loss events in the 6 months before T not covered by unemployment insurance "
                     "(coverage missing counts as not covered).")
def uninsured_job_loss_6m(snap: Snapshot) -> np.ndarray:
    losses = _events(snap, "job_loss", 6)
    insured = losses["unemployment_insured"].astype(np.float64) > 0  # missing (NaN) is not insured
    return snap.per_household(losses["_h"][~insured])


@feature(name="months_since_job_loss", missing_is_gap=False,
         group="employment", source=("employment_events",),
         window_months=None, unit="months", monotone=-1,
         zh="家庭成员最近一次失业是在{value:.0f}个月前",
         en="A household member last lost a job {value:.0f} months ago",
         label_zh="距上次失业月数", label_en="Months since a job loss",
         description="Months between the latest known job loss and T; NaN when none is known.")
def months_since_job_loss(snap: Snapshot) -> np.ndarray:
    losses = _events(snap, "job_loss")
    months = snap.months_before(losses["event_date"])
    return snap.per_household_min(losses["_h"], months)


@feature(name="returned_migrants_6m", group="employment", source=("employment_events",), window_months=6,
         unit="persons", monotone=+1, fill=0.0,
         zh="近6个月有{value:.0f}名外出务工的家庭成员返乡",
         en="{value:.0f} migrant workers of the household came back in the last 6 months",
         label_zh="返乡务工人员", label_en="Returned migrant workers",
         description="migrant_return events in the 6 months before T.")
def returned_migrants_6m(snap: Snapshot) -> np.ndarray:
    return snap.per_household(_events(snap, "migrant_return", 6)["_h"])


@feature(name="employed_members", group="employment", source=("employment_events",), window_months=None,
         unit="persons", monotone=-1, fill=0.0,
         zh="据就业登记，目前有{value:.0f}名家庭成员在岗",
         en="{value:.0f} household members are in a registered job",
         label_zh="在岗人数", label_en="Members in a registered job",
         description="Members whose latest job_start/job_loss event known at T is a job_start.")
def employed_members(snap: Snapshot) -> np.ndarray:
    current = _current(snap, ("job_start", "job_loss"))
    working = current["event_type"] == _CODE["job_start"]
    return snap.per_household(current["_h"][working])


@feature(name="migrants_away", group="employment", source=("employment_events",), window_months=None,
         unit="persons", monotone=-1, fill=0.0,
         zh="目前有{value:.0f}名家庭成员在外务工",
         en="{value:.0f} household members are away as migrant workers",
         label_zh="外出务工人数", label_en="Members away as migrant workers",
         description="Members whose latest migrant_out/migrant_return event known at T is migrant_out.")
def migrants_away(snap: Snapshot) -> np.ndarray:
    current = _current(snap, ("migrant_out", "migrant_return"))
    away = current["event_type"] == _CODE["migrant_out"]
    return snap.per_household(current["_h"][away])
