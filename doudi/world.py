"""A synthetic multi-department world that follows the data contract, simulated month by month.

Five counties in two provinces (urban districts and poor rural counties, each with its own standards,
wages, disasters and take-up of assistance) are simulated over ``months`` months, vectorised over all
households and persons per month. What happens to a household emerges from processes, never from a
formula over features:

* **People** age; babies are born; school-age children study; elderly and disabled members have less
  labour capacity.
* **Work**: local jobs (some covered by unemployment insurance, which pays a benefit for a while),
  migrant work away from home (wages peak with the year-end bonus), household farming with a seasonal
  harvest calendar and casual work, small businesses, pensions, support from children living
  elsewhere. Job losses (with a temporary plant
  closure in one county), returns of migrant workers (a coastal slowdown sends one county's home),
  re-employment that is slower for older people and quicker when savings run out.
* **Health**: chronic illness with monthly outpatient bills; serious illness (cancer, stroke, kidney
  failure, mental illness) whose costs *build up over months* before the patient and a carer stop
  earning; strokes leave a certified disability months later; sudden accidents and ordinary
  illnesses as noise. Each stay or visit is a claim, reimbursed by insurance (more for the serious-
  illness list and dialysis) and by medical assistance (dibao, 特困, edge and lifted-out households).
* **Disasters** by season (spring drought, hail, summer floods and landslides, winter frost, rare
  earthquakes) hit a village, a township or a whole county; they destroy the *coming* harvest (a
  summer flood empties the autumn harvest months later, before the lean season) and damage houses;
  losses are assessed weeks later.
* **Savings** grow or run down with income, consumption, medical bills and repairs.
* **Assistance** follows the policy rules with lags and incomplete take-up: dibao when per-capita
  income net of medical bills is below the standard and deposits are within the limit (families apply
  mostly once their savings run low; approval takes 2-4 months), edge families (identification
  campaigns in April and October), 特困 for people with no labour capacity and no one to support them,
  temporary assistance after a shock (for households without much savings), education help, housing
  help after a collapse.
  Dibao recipients are reviewed yearly and leave once income is stably above the standard.
* **Reporting lags**: every record has ``recorded_at`` after the event (income 1-2 months after the
  month, claims days to weeks after discharge, a few very late).

The world holds every record that will ever exist for the simulated months, including those recorded
after its last month (labels need the truth; the point-in-time cut is the features' job). Assistance
payments are in ``assistance``, not in ``income``. ``members`` is the register (labour capacity and
schooling as of the first simulated month), plus babies born later (recorded weeks after birth); a
disability certified during the simulation carries its certification date.
Standards rows are published on the 20th of the month before; their CPI columns hold the latest
year-on-year change published then (that of two months earlier).

``--messy`` (:func:`inject_faults`) then breaks a few rows the way real extracts break, and returns a
manifest of what it broke.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from doudi.contract import (
    DIAGNOSIS_GROUPS,
    DISASTER_TYPES,
    EMPLOYMENT_EVENTS,
    HOUSING_DAMAGE,
    INCOME_SOURCES,
    PROGRAMMES,
    RELATIONS,
    TABLES,
)
from doudi.io import World, finalize_dtypes
from doudi.pseudonym import CHECK_CHARS, WEIGHTS

__all__ = ["COUNTIES", "FAULTS", "County", "faults_manifest_text", "generate_world", "inject_faults"]


@dataclass(frozen=True)
class County:
    """One simulated county: its codes, money levels (2023 yuan) and risks.

    Attributes:
        weight: share of the world's households.
        urban_share: share of households in urban communities.
        dibao: 2023 dibao standard (urban, rural), yuan/person/month; +4-6 % each January.
        monitoring_line: 2023 province monitoring line, yuan/person/year; +400 each January.
        wage: monthly wage of a local job (urban, rural) and of a migrant job.
        farm: yearly net farm income of an average rural household.
        lifted_share: share of rural households lifted out of poverty in 2016-2020.
        hazards: disaster type -> yearly chance per township, spread over its season.
        job_shock: (first month, last month, multiplier) of the local job-loss hazard.
        return_shock: (first month, last month, multiplier) of migrant workers' return hazard.
        take_up: multiplier of the chance that an eligible household applies for assistance.
    """

    code: str
    name: str
    weight: float
    urban_share: float
    townships: int
    dibao: tuple[float, float]
    monitoring_line: float
    disposable: tuple[float, float]
    wage: tuple[float, float, float]
    farm: float
    migrant_share: float
    lifted_share: float
    minority_share: float
    insured_share: tuple[float, float]
    inpatient_reimbursement: float
    pension: float
    hazards: tuple[tuple[str, float], ...]
    job_shock: tuple[int, int, float] = (0, -1, 1.0)
    return_shock: tuple[int, int, float] = (0, -1, 1.0)
    take_up: float = 1.0


COUNTIES: tuple[County, ...] = (
    County("530102", "五华区", weight=0.17, urban_share=0.85, townships=6, dibao=(800, 650),
           monitoring_line=8300, disposable=(52000, 21000), wage=(4300, 3500, 4800), farm=12000,
           migrant_share=0.12, lifted_share=0.03, minority_share=0.12, insured_share=(0.65, 0.3),
           inpatient_reimbursement=0.62, pension=230,
           hazards=(("hail", 0.3), ("drought", 0.3), ("flood", 0.2))),
    County("530521", "施甸县", weight=0.22, urban_share=0.18, townships=6, dibao=(720, 520),
           monitoring_line=8300, disposable=(38000, 15500), wage=(3600, 2800, 4400), farm=13000,
           migrant_share=0.35, lifted_share=0.35, minority_share=0.08, insured_share=(0.5, 0.15),
           inpatient_reimbursement=0.6, pension=180, take_up=0.9,
           hazards=(("drought", 0.6), ("hail", 0.4), ("landslide", 0.3), ("earthquake", 0.05))),
    County("533323", "福贡县", weight=0.14, urban_share=0.12, townships=5, dibao=(700, 500),
           monitoring_line=8300, disposable=(32000, 11500), wage=(3300, 2600, 4200), farm=10000,
           migrant_share=0.3, lifted_share=0.6, minority_share=0.95, insured_share=(0.45, 0.1),
           inpatient_reimbursement=0.65, pension=170, take_up=0.8,
           hazards=(("landslide", 0.8), ("flood", 0.6), ("frost", 0.3), ("earthquake", 0.05))),
    County("522323", "普安县", weight=0.25, urban_share=0.2, townships=7, dibao=(760, 540),
           monitoring_line=7900, disposable=(36000, 13500), wage=(3500, 2700, 4600), farm=12500,
           migrant_share=0.42, lifted_share=0.4, minority_share=0.3, insured_share=(0.5, 0.15),
           inpatient_reimbursement=0.6, pension=170, return_shock=(14, 21, 3.0),
           hazards=(("hail", 0.7), ("frost", 0.4), ("drought", 0.4), ("flood", 0.4))),
    County("520102", "南明区", weight=0.22, urban_share=0.8, townships=6, dibao=(830, 680),
           monitoring_line=7900, disposable=(45000, 20000), wage=(4000, 3400, 4700), farm=11000,
           migrant_share=0.1, lifted_share=0.02, minority_share=0.15, insured_share=(0.6, 0.25),
           inpatient_reimbursement=0.62, pension=220, job_shock=(16, 24, 2.5),
           hazards=(("flood", 0.3), ("hail", 0.2))),
)

# Calendar months in which each disaster type strikes (its season).
_SEASONS = {"flood": (6, 7, 8), "landslide": (6, 7, 8, 9), "typhoon": (8, 9), "drought": (3, 4, 5),
            "hail": (4, 5, 6, 7), "frost": (12, 1, 2), "earthquake": tuple(range(1, 13))}
# Share of a rural household's yearly farm income earned in each calendar month (summer grain in
# June, the autumn harvest in September-November, little in the lean months).
_HARVEST = np.array([0.03, 0.02, 0.02, 0.03, 0.08, 0.14, 0.05, 0.05, 0.18, 0.22, 0.12, 0.06])
_HARVEST_ENDS = (6, 11)  # a crop lost to a disaster is the one harvested by the next of these months

_SOURCE = {name: i for i, name in enumerate(INCOME_SOURCES)}
_PROG = {name: i for i, name in enumerate(PROGRAMMES)}
_EVENT = {name: i for i, name in enumerate(EMPLOYMENT_EVENTS)}
_DIAG = {name: i for i, name in enumerate(DIAGNOSIS_GROUPS)}
_REL = {name: i for i, name in enumerate(RELATIONS)}

# Person jobs.
_NONE, _LOCAL, _MIGRANT, _FARM, _BUSINESS = range(5)
# Serious illnesses.
_CANCER, _STROKE, _KIDNEY, _MENTAL = 1, 2, 3, 4
_SERIOUS_DIAG = {_CANCER: _DIAG["cancer"], _STROKE: _DIAG["stroke"], _KIDNEY: _DIAG["chronic_kidney"],
                 _MENTAL: _DIAG["mental"]}

_CANCER_SURGERY = 3  # months from a cancer diagnosis to the operation (work stops, bills peak)
_CASUAL = 0.2  # a farmer's expected casual earnings as a share of a local wage
MIN_WAGE = 1800.0  # unemployment benefit is 80 % of it
DEPOSIT_LIMIT_MONTHS = 24  # policy.yaml deposit_limit_months
EMPLOYMENT_COST_DEDUCTION = 300.0  # policy.yaml employment_cost_deduction


# ---------------------------------------------------------------------------------------------------------
# Public entry points


def generate_world(
    households: int,
    months: int,
    seed: int,
    *,
    start_month: str = "2023-01",
    messy: bool = False,
    on_month: Callable[[int], None] | None = None,
) -> World:
    """Simulate a world of ``households`` households over ``months`` months.

    Deterministic per ``seed`` (the same arguments give equal frames). The frames are typed as
    ``doudi.validate.load_world`` returns them, except that ``members`` holds the synthetic resident
    ID numbers (``id_number``: valid GB 11643 numbers with the birth date and sex inside) instead of
    their pseudonyms.

    Args:
        households: number of households (at least 1).
        months: number of simulated months (at least 1).
        seed: seed of the random generator.
        start_month: first simulated month, ``YYYY-MM``.
        messy: break a few rows as :func:`inject_faults` does (its manifest is not returned; call
            :func:`inject_faults` on the clean world to get both).
        on_month: called with the number of months simulated so far, after each month.

    Returns:
        Every contract table.
    """
    if households < 1 or months < 1:
        raise ValueError("households and months must be at least 1")
    start = pd.Period(start_month, freq="M")
    world = _Simulation(households, months, np.random.default_rng(seed), start).run(on_month)
    if messy:
        world, _ = inject_faults(world, seed=seed)
    return world


# ---------------------------------------------------------------------------------------------------------
# Small helpers


def _strings(labels: np.ndarray | list[str], codes: np.ndarray) -> pd.Series:
    """Text column ``labels[codes]`` (missing where a code is negative), as the contract's string dtype.

    Arrow's take is ~10x faster than going through a pandas Categorical for millions of rows.
    """
    codes = np.asarray(codes, dtype=np.int64)
    index = pa.array(codes, mask=codes < 0)
    taken = pa.array(np.asarray(labels, dtype=object), type=pa.large_string()).take(index)
    return pd.Series(pd.array(taken, dtype="string"))


def _numbered(prefix: str, count: int) -> pd.Series:
    """Identifiers ``<prefix>0``, ``<prefix>1``, … as a contract text column."""
    return pd.Series(pd.array(np.char.add(prefix, np.arange(count).astype(str)), dtype="string"))


def _days(values: np.ndarray) -> pd.Series:
    """Dates (datetime64[D], NaT allowed) as a datetime64[ns] column."""
    return pd.Series(np.asarray(values, dtype="datetime64[D]").astype("datetime64[ns]"))


def _pick(rng: np.random.Generator, mask: np.ndarray, chance: float | np.ndarray) -> np.ndarray:
    """Positions where ``mask`` holds and a draw falls under ``chance`` (drawn for those positions only)."""
    where = np.flatnonzero(mask)
    odds = chance if np.isscalar(chance) else np.asarray(chance)[where]
    return where[rng.random(len(where)) < odds]


def _check_chars(first17: np.ndarray) -> np.ndarray:
    """GB 11643 check characters of an (n, 17) array of digits."""
    remainder = (first17 * np.array(WEIGHTS)).sum(axis=1) % 11
    return np.array(list(CHECK_CHARS))[remainder]


class _Table:
    """Rows of one table, appended as column arrays month by month and concatenated once."""

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, **columns: np.ndarray) -> None:
        lengths = {len(np.atleast_1d(v)) for v in columns.values()}
        if lengths == {0}:
            return
        for name, values in columns.items():
            self.parts.setdefault(name, []).append(np.atleast_1d(values))

    def column(self, name: str, dtype: str | type = np.float64) -> np.ndarray:
        parts = self.parts.get(name)
        return np.concatenate(parts) if parts else np.array([], dtype=dtype)

    def __len__(self) -> int:
        parts = next(iter(self.parts.values()), [])
        return sum(len(p) for p in parts)


class _Spells:
    """Assistance records whose end is decided later (dibao, edge, 特困): growable arrays."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.household = np.zeros(capacity, np.int64)
        self.person = np.zeros(capacity, np.int64)
        self.programme = np.zeros(capacity, np.int64)
        self.start = np.zeros(capacity, "datetime64[D]")
        self.end = np.full(capacity, np.datetime64("NaT"), "datetime64[D]")
        self.amount = np.zeros(capacity, np.float64)
        self.recorded = np.zeros(capacity, "datetime64[D]")

    def add(self, household: np.ndarray, person: np.ndarray, programme: int, start: np.ndarray,
            amount: np.ndarray, recorded: np.ndarray) -> np.ndarray:
        count = len(household)
        while self.n + count > len(self.household):
            for name in ("household", "person", "programme", "start", "end", "amount", "recorded"):
                old = getattr(self, name)
                grown = np.concatenate([old, np.full_like(old, np.datetime64("NaT") if name == "end" else 0)])
                setattr(self, name, grown)
        ids = np.arange(self.n, self.n + count)
        self.household[ids], self.person[ids], self.programme[ids] = household, person, programme
        self.start[ids], self.amount[ids], self.recorded[ids] = start, amount, recorded
        self.n += count
        return ids


# ---------------------------------------------------------------------------------------------------------
# The simulation


class _Simulation:
    """State of every household and person; :meth:`run` steps through the months."""

    def __init__(self, households: int, months: int, rng: np.random.Generator, start: pd.Period):
        self.rng, self.H, self.M, self.start = rng, households, months, start
        first = start.start_time
        self.month_start = np.array([(start + i).start_time.to_datetime64() for i in range(months + 1)],
                                    dtype="datetime64[D]")
        self.days_in = (self.month_start[1:] - self.month_start[:-1]).astype(np.int64)
        self.calendar = np.array([(start + i).month for i in range(months)])
        self.year = np.array([(start + i).year for i in range(months)])
        self.first_day = np.datetime64(first.date(), "D")
        self.tables = {name: _Table() for name in ("income", "claims", "employment", "disasters", "losses",
                                                   "oneoff", "assets")}
        self.spells = _Spells(max(16, households // 2))
        self._regions()
        self._standards()
        self._households()
        self._members()
        self._initial_state()

    # --- geography and standards ----------------------------------------------------------------------

    def _regions(self) -> None:
        rng = self.rng
        codes, names, urban, county, township = [], [], [], [], []
        for c, info in enumerate(COUNTIES):
            n_urban = max(1, round(info.townships * info.urban_share))
            for t in range(info.townships):
                is_urban = t < n_urban
                for v in range(int(rng.integers(5, 10))):
                    number = v + 1 if is_urban else 201 + v
                    codes.append(f"{info.code}{t + 1:03d}{number:03d}")
                    kind = "社区" if is_urban else "村"
                    names.append(f"{info.name}{'街道' if is_urban else '镇'}{t + 1}{kind}{v + 1}")
                    urban.append(is_urban)
                    county.append(c)
                    township.append(c * 100 + t)
        self.village_code = np.array(codes)
        self.village_name = np.array(names)
        self.village_urban = np.array(urban)
        self.village_county = np.array(county)
        self.village_township = np.array(township)

    def _standards(self) -> None:
        """Per county, urban/rural and month: standards, lines, last year's income, CPI (2 provinces)."""
        rng, M = self.rng, self.M
        years = self.year - 2023
        n_c = len(COUNTIES)
        raise_dibao = 1 + rng.uniform(0.04, 0.06, (n_c, max(years) + 1 if M else 1))
        self.dibao = np.zeros((n_c, 2, M))  # [county, urban(0)/rural(1), month]
        self.line = np.zeros((n_c, M))
        for c, info in enumerate(COUNTIES):
            growth = np.cumprod(np.r_[1.0, raise_dibao[c, 1:]])[np.maximum(years, 0)]
            growth = np.where(years < 0, 1.0, growth)
            for u in range(2):
                self.dibao[c, u] = np.round(info.dibao[u] * growth / 5) * 5
            self.line[c] = info.monitoring_line + 400 * years
        # CPI by province, two months longer than the world: a row shows the figure of two months earlier.
        provinces = sorted({info.code[:2] for info in COUNTIES})
        self.cpi = np.zeros((len(provinces), M + 2))
        self.food_cpi = np.zeros((len(provinces), M + 2))
        for p in range(len(provinces)):
            shock = np.zeros(M + 2)
            for i in range(1, M + 2):
                shock[i] = 0.8 * shock[i - 1] + rng.normal(0, 0.35)
            pork = 4.5 * np.sin(2 * np.pi * (np.arange(M + 2) + rng.uniform(0, 36)) / 36)
            self.cpi[p] = np.round(1.2 + shock + 0.12 * pork, 1)
            self.food_cpi[p] = np.round(1.5 + 2.5 * shock + pork + rng.normal(0, 0.6, M + 2), 1)
        self.county_province = np.array([provinces.index(info.code[:2]) for info in COUNTIES])

    def standards_table(self) -> pd.DataFrame:
        n_c, M = len(COUNTIES), self.M
        c, m, u = (a.ravel() for a in np.meshgrid(np.arange(n_c), np.arange(M), np.arange(2), indexing="ij"))
        disposable = np.array([info.disposable for info in COUNTIES])[c, u] * 1.06 ** (self.year[m] - 2023)
        province = self.county_province[c]
        month_labels = np.array([str(self.start + i) for i in range(M)])
        return pd.DataFrame({
            "county_code": _strings(np.array([i.code for i in COUNTIES]), c),
            "month": _strings(month_labels, m),
            "urban_rural": _strings(np.array(["urban", "rural"]), u),
            "dibao_standard": self.dibao[c, u, m],
            "monitoring_line": self.line[c, m],
            "disposable_income_last_year": np.round(disposable, -1),
            "consumption_last_year": np.round(disposable * np.where(u == 0, 0.68, 0.78), -1),
            "cpi_yoy": self.cpi[province, m],
            "food_cpi_yoy": self.food_cpi[province, m],
            # Published around the 20th of the month before.
            "recorded_at": _days(self.month_start[m] - np.timedelta64(11, "D")),
        })

    # --- households and members -----------------------------------------------------------------------

    def _households(self) -> None:
        rng, H = self.rng, self.H
        weights = np.array([info.weight for info in COUNTIES])
        county = rng.choice(len(COUNTIES), H, p=weights / weights.sum())
        urban_share = np.array([info.urban_share for info in COUNTIES])[county]
        urban = rng.random(H) < urban_share
        # A village of the household's county and kind.
        village = np.zeros(H, np.int64)
        for c in range(len(COUNTIES)):
            for u in (True, False):
                pool = np.flatnonzero((self.village_county == c) & (self.village_urban == u))
                mask = (county == c) & (urban == u)
                village[mask] = pool[rng.integers(0, len(pool), mask.sum())]
        lifted_share = np.array([info.lifted_share for info in COUNTIES])[county]
        lifted = ~urban & (rng.random(H) < lifted_share)
        self.h_county, self.h_urban, self.h_village, self.h_lifted = county, urban, village, lifted
        self.h_township = self.village_township[village]
        self.h_lifted_year = np.where(lifted, rng.choice([2016, 2017, 2018, 2019, 2020], H,
                                                         p=[0.15, 0.2, 0.25, 0.25, 0.15]), 0)
        # Earning potential: lower for lifted-out households and in poorer counties.
        poorness = np.array([1 - info.disposable[1] / 21000 for info in COUNTIES])[county]
        self.h_potential = rng.normal(0, 1, H) - 0.45 * lifted - 0.8 * poorness
        registered = np.where(
            lifted, np.datetime64("2014-06-01") + rng.integers(0, 900, H),
            np.datetime64("2019-01-01") + rng.integers(0, max(30, (self.first_day - np.datetime64(
                "2019-01-01")).astype(int) - 90), H))
        self.h_registered = registered.astype("datetime64[D]")

    def _members(self) -> None:
        """Household composition at the start (plus babies born during the simulation)."""
        rng, H = self.rng, self.H
        first = self.first_day
        rural_old = ~self.h_urban
        head_age = np.clip(rng.normal(np.where(rural_old, 54, 48), 14, H), 22, 92)
        spouse = rng.random(H) < np.where(head_age < 70, 0.85, 0.55)
        young_parent = head_age < 52
        children = np.where(young_parent, rng.choice([0, 1, 2, 3], H, p=[0.12, 0.4, 0.38, 0.1]),
                            rng.choice([0, 1, 2], H, p=[0.45, 0.4, 0.15]))
        parents = np.where(head_age < 58, rng.choice([0, 1, 2], H, p=[0.6, 0.25, 0.15]), 0)
        grandchildren = np.where(~young_parent & (children > 0) & (head_age < 80),
                                 rng.choice([0, 1, 2], H, p=[0.55, 0.3, 0.15]), 0)
        size = 1 + spouse + children + parents + grandchildren
        p_h = np.repeat(np.arange(H), size)
        rank = np.arange(len(p_h)) - np.repeat(np.cumsum(size) - size, size)
        b1 = 1 + spouse[p_h]
        b2 = b1 + children[p_h]
        b3 = b2 + parents[p_h]
        relation = np.select([rank == 0, rank < b1, rank < b2, rank < b3],
                             [_REL["head"], _REL["spouse"], _REL["child"], _REL["parent"]],
                             default=_REL["grandchild"])
        n = len(p_h)
        ha = head_age[p_h]
        age = np.select(
            [relation == _REL["head"], relation == _REL["spouse"], relation == _REL["child"],
             relation == _REL["parent"]],
            [ha, np.clip(ha + rng.normal(-2, 3, n), 20, 95),
             np.where(young_parent[p_h], rng.uniform(0, np.maximum(ha - 21, 0.5), n),
                      np.clip(ha - rng.uniform(22, 34, n), 16, 70)),
             np.clip(ha + rng.uniform(23, 32, n), 60, 99)],
            default=rng.uniform(0, 13, n))
        head_male = rng.random(H) < np.where(self.h_urban, 0.7, 0.85)
        sex = np.where(relation == _REL["head"], ~head_male[p_h],
                       np.where(relation == _REL["spouse"], head_male[p_h], rng.random(n) < 0.5)).astype(int)
        # A random day within the year of age: clipped ages would otherwise share a birth date.
        birth = first - np.round((age + rng.uniform(0, 1, n)) * 365.25).astype(np.int64)
        # Babies born during the simulation, to spouses and daughters-in-law aged 20-40.
        mothers = np.flatnonzero((sex == 1) & (relation == _REL["spouse"]) & (age >= 20) & (age < 40)
                                 & (rng.random(n) < 0.05 * self.M / 12))
        baby_day = first + rng.integers(0, (self.month_start[-1] - first).astype(int), len(mothers))
        self.mother_of_baby = mothers
        p_h = np.concatenate([p_h, p_h[mothers]])
        relation = np.concatenate([relation, np.where(relation[mothers] == _REL["spouse"], _REL["child"],
                                                      _REL["grandchild"])])
        sex = np.concatenate([sex, rng.integers(0, 2, len(mothers))])
        birth = np.concatenate([birth, baby_day]).astype("datetime64[D]")
        n = len(p_h)
        order = np.argsort(p_h, kind="stable")  # keep each household's members together
        p_h, relation, sex, birth = p_h[order], relation[order], sex[order], birth[order]
        self.baby_position = np.argsort(order)[len(order) - len(mothers):]
        self.mother_of_baby = np.argsort(order)[mothers]
        self.P = n
        self.p_h, self.p_relation, self.p_sex, self.p_birth = p_h, relation, sex, birth
        self.p_couple = (relation == _REL["head"]) | (relation == _REL["spouse"])
        age0 = (first - birth).astype(np.int64) / 365.25
        # Disability: grade 1 (most severe) to 4, more often in old age and in lifted-out households.
        disabled = (age0 >= 0) & (rng.random(n) < 0.03 + 0.0012 * np.maximum(age0, 0)
                                  + 0.03 * self.h_lifted[p_h])
        grade = np.where(disabled, rng.choice([1, 2, 3, 4], n, p=[0.12, 0.23, 0.35, 0.3]), 0)
        certified = birth + ((first - birth).astype(np.int64) * rng.uniform(0.2, 0.95, n)).astype(np.int64)
        self.p_grade = grade
        self.p_certified = np.where(disabled, certified, np.datetime64("NaT")).astype("datetime64[D]")
        minority_share = np.array([info.minority_share for info in COUNTIES])[self.h_county]
        self.p_minority = (rng.random(self.H) < minority_share)[p_h]
        # Chronic illness (diabetes, cardiovascular) at the start.
        chronic_p = np.clip(0.002 * np.exp(0.055 * (age0 - 30)), 0, 0.45)
        self.chronic = np.where((age0 >= 18) & (rng.random(n) < chronic_p),
                                rng.choice([_DIAG["diabetes"], _DIAG["cardiovascular"]], n), -1)
        in_school = (age0 >= 6) & (((age0 < 18) & (rng.random(n) < 0.97))
                                   | ((age0 < 22) & (rng.random(n) < 0.35)))
        capacity = np.select(
            [(age0 < 16) | (age0 >= 75) | np.isin(grade, (1, 2)),
             (age0 >= 60) | (grade > 0) | (self.chronic >= 0)],
            [2, 1], default=0)
        self.p_capacity0, self.p_school0 = capacity, in_school
        self.p_ids = self._id_numbers()

    def _id_numbers(self) -> np.ndarray:
        """Valid, unique 18-character resident ID numbers: county, birth date, sequence (odd = male)."""
        county = np.array([int(info.code) for info in COUNTIES])[self.h_county[self.p_h]]
        ymd = pd.DatetimeIndex(self.p_birth.astype("datetime64[ns]"))
        birth = (ymd.year * 10000 + ymd.month * 100 + ymd.day).to_numpy(np.int64)
        key = pd.DataFrame({"c": county, "b": birth, "s": self.p_sex})
        rank = key.groupby(["c", "b", "s"], sort=False).cumcount().to_numpy()
        if rank.max(initial=0) >= 450:
            raise ValueError("too many people share a county, birth date and sex for unique ID numbers")
        sequence = 100 + 2 * rank + (self.p_sex == 0)  # odd for men
        number = county * 10**11 + birth * 1000 + sequence
        digits = (number[:, None] // 10 ** np.arange(16, -1, -1)) % 10
        first17 = pd.Series(number).astype(str).str.zfill(17).to_numpy(dtype=object)
        return (first17.astype(str).astype(object) + _check_chars(digits)).astype(str)

    def members_table(self) -> pd.DataFrame:
        relation = self.p_relation
        newborn = np.zeros(self.P, bool)
        newborn[self.baby_position] = True
        registered = self.h_registered[self.p_h]
        rng = self.rng
        recorded = np.where(newborn, self.p_birth + rng.integers(15, 90, self.P),
                            np.maximum(registered, self.p_birth + 1)).astype("datetime64[D]")
        certified_at = self.p_certified
        ids = np.array([f"H{i:07d}" for i in range(self.H)])
        rank = np.arange(self.P) - np.searchsorted(self.p_h, self.p_h)
        person_ids = np.char.add(np.char.add(ids[self.p_h], "-"), (rank + 1).astype(str))
        self.person_ids = person_ids
        return pd.DataFrame({
            "person_id": pd.Series(pd.array(person_ids, dtype="string")),
            "household_id": _strings(ids, self.p_h),
            "id_number": pd.Series(pd.array(self.p_ids, dtype="string")),
            "id_hash": pd.Series(pd.array([None] * self.P, dtype="string")),
            "id_last4": pd.Series(pd.array([None] * self.P, dtype="string")),
            "birth_date": _days(self.p_birth),
            "sex": _strings(np.array(["M", "F"]), self.p_sex),
            "ethnic_minority": self.p_minority,
            "relation": _strings(np.array(RELATIONS), relation),
            "disability_grade": self.p_grade.astype(np.int64),
            "disability_certified_at": _days(certified_at),
            "labour_capacity": _strings(np.array(["full", "partial", "none"]),
                                        np.where(newborn, 2, self.p_capacity0)),
            "in_school": self.p_school0 & ~newborn,
            "recorded_at": _days(recorded),
        })

    # --- initial economic state -----------------------------------------------------------------------

    def _initial_state(self) -> None:
        rng, P, H = self.rng, self.P, self.H
        info = COUNTIES
        first = self.first_day
        p_h = self.p_h
        age0 = (first - self.p_birth).astype(np.int64) / 365.25
        urban_p = self.h_urban[p_h]
        county_p = self.h_county[p_h]
        potential = self.h_potential[p_h]
        wage_local = np.array([[i.wage[0], i.wage[1]] for i in info])[county_p, (~urban_p).astype(int)]
        wage_migrant = np.array([i.wage[2] for i in info])[county_p]
        level = np.exp(0.3 * potential + rng.normal(0, 0.25, P))
        self.wage_local_level = wage_local * level
        self.wage_migrant_level = wage_migrant * level
        self.wage = np.zeros(P)
        able = (age0 >= 16) & (age0 < 64) & (self.p_capacity0 < 2) & ~self.p_school0
        migrant_share = np.array([i.migrant_share for i in info])[county_p]
        draw = rng.random(P)
        urban_job = np.where(draw < 0.72, _LOCAL, np.where(draw < 0.8, _BUSINESS, _NONE))
        mig = migrant_share * np.where(age0 < 45, 1.5, 0.6)
        rural_job = np.select([draw < mig, draw < mig + 0.3, draw < mig + 0.34],
                              [_MIGRANT, _LOCAL, _BUSINESS], default=_FARM)
        job = np.where(able, np.where(urban_p, urban_job, rural_job), _NONE)
        older_farmer = ~urban_p & (age0 >= 64) & (age0 < 76) & (self.p_capacity0 < 2)
        job = np.where(older_farmer, _FARM, job)
        job[self.baby_position] = _NONE
        self.job = job
        insured_share = np.array([i.insured_share for i in info])[county_p, (~urban_p).astype(int)]
        self.insured = rng.random(P) < np.where(job == _MIGRANT, 0.25, insured_share)
        self.wage = np.where(job == _MIGRANT, self.wage_migrant_level,
                             np.where(job == _LOCAL, self.wage_local_level, 0.0))
        self.wage *= np.where(self.p_capacity0 == 1, 0.7, 1.0)
        self.business_level = np.where(job == _BUSINESS, 2600 * np.exp(0.35 * potential
                                                                      + rng.normal(0, 0.4, P)), 0.0)
        self.benefit_left = np.zeros(P, np.int64)
        self.unemployed_months = np.where(able & (job == _NONE), rng.integers(0, 12, P), 0)
        # Urban retirees draw an employee pension; everybody else 60+ the basic residents' pension.
        self.retiree_pension = np.where(urban_p & (rng.random(P) < 0.55),
                                        np.exp(rng.normal(np.log(3000), 0.25, P)), 0.0)
        self.basic_pension = np.array([i.pension for i in info])[county_p]
        # Health state.
        self.sick = np.zeros(P, np.int64)
        self.sick_k = np.zeros(P, np.int64)
        self.sick_len = np.zeros(P, np.int64)
        self.followup = np.zeros(P, np.int64)
        self.off_work = np.zeros(P, np.int64)  # months off work after an accident
        self.capacity = self.p_capacity0.copy()
        self.stroke_cert = np.zeros(P, np.int64) - 1  # month a stroke disability gets certified
        # Household farm, business, property and transfers.
        farm = np.array([i.farm for i in info])[self.h_county]
        self.farm_value = np.where(~self.h_urban, farm * np.exp(0.25 * self.h_potential
                                                                + rng.normal(0, 0.35, H)), 0.0)
        self.property_income = np.where(rng.random(H) < 0.08, rng.uniform(200, 1500, H), 0.0)
        # Other transfers: subsidies for some rural households, and children living elsewhere who
        # support their old parents (赡养费).
        oldest = np.zeros(H)
        np.maximum.at(oldest, p_h, np.where(self.p_birth < first, age0, 0))
        support = (oldest >= 60) & (rng.random(H) < 0.6)
        self.transfer_income = (np.where(~self.h_urban & (rng.random(H) < 0.18), rng.uniform(80, 350, H), 0.0)
                                + np.where(support, rng.uniform(300, 1000, H), 0.0))
        self.crop_hit = np.zeros(H)
        self.crop_until = np.full(H, -1)
        # Income history for smoothing consumption and for the civil-affairs assessment (last 3 months).
        expected = self._expected_income(age0)
        self.recent_income = np.tile(expected, (3, 1))
        self.recent_oop = np.zeros((3, H))
        self.ewma_income = expected.copy()
        months_saved = np.exp(rng.normal(np.log(5), 1.0, H)) * np.where(self.h_lifted, 0.5, 1.0)
        self.savings = np.maximum(expected, 300) * months_saved
        self.vehicles = np.where(rng.random(H) < 1 / (1 + np.exp(-(self.h_potential - 0.3) * 1.5)),
                                 rng.choice([1, 1, 1, 2], H), 0)
        self.houses = np.where(self.h_urban, rng.choice([0, 1, 1, 2], H), 1)
        self.never_apply = rng.random(H) < 0.3
        self.size = np.bincount(p_h, weights=(self.p_birth < first).astype(float), minlength=H)
        self._initial_assistance(age0, expected)
        self._initial_events(age0)

    def _expected_income(self, age: np.ndarray) -> np.ndarray:
        """A household's typical monthly income from its members' current jobs."""
        p_h, H = self.p_h, self.H
        casual = (self.job == _FARM) & (age < 65)
        pension = np.where(age >= 60, self.basic_pension + self.retiree_pension, 0.0)
        person = (self.wage + self.business_level * (self.job == _BUSINESS)
                  + casual * _CASUAL * self.wage_local_level + pension)
        farm_labour = np.bincount(p_h, weights=self._farm_labour(age), minlength=H)
        return (np.bincount(p_h, weights=person, minlength=H)
                + self.farm_value / 12 * np.minimum(1, farm_labour / 2)
                + self.property_income + self.transfer_income)

    def _farm_labour(self, age: np.ndarray) -> np.ndarray:
        """Each person's farm work (1 full, 0.5 partial) on the household's land."""
        helps = (self.job == _FARM) | ((self.job == _NONE) & (age >= 16) & (age < 76) & ~self.p_school0)
        helps &= (self.sick == 0) & (self.off_work == 0) & ~self.h_urban[self.p_h]
        return helps * np.select([self.capacity == 0, self.capacity == 1], [1.0, 0.5], default=0.0)

    def _initial_assistance(self, age: np.ndarray, expected: np.ndarray) -> None:
        """Households already on dibao, edge or 特困 when the simulation starts (spells begun earlier)."""
        rng, H = self.rng, self.H
        std = self.dibao[self.h_county, (~self.h_urban).astype(int), 0]
        pc = expected / np.maximum(self.size, 1)
        self.on_dibao = np.full(H, -1)  # open spell id
        self.on_edge = np.full(H, -1)
        self.on_tekun = np.full(self.P, -1)
        self.pending = np.full(H, -1)  # month index at which an approved dibao starts
        self.pending_amount = np.zeros(H)
        self.pending_tekun = np.full(self.P, -1)
        wealth_ok = self.savings / np.maximum(self.size, 1) < DEPOSIT_LIMIT_MONTHS * std
        dibao = (pc < std) & wealth_ok & (rng.random(H) < 0.6)
        edge = ~dibao & (pc < 1.5 * std) & wealth_ok & (rng.random(H) < 0.4)
        start = self.first_day - rng.integers(60, 1500, H)
        start = start.astype("datetime64[M]").astype("datetime64[D]")
        for mask, programme, amount in ((dibao, "dibao", np.maximum(std - pc, 60) * self.size),
                                        (edge, "edge", np.zeros(H))):
            homes = np.flatnonzero(mask)
            ids = self.spells.add(homes, np.full(len(homes), -1), _PROG[programme], start[homes],
                                  np.round(amount[homes]), start[homes] + rng.integers(5, 40, len(homes)))
            (self.on_dibao if programme == "dibao" else self.on_edge)[homes] = ids
        # 特困: people with no labour capacity in a household with nobody able to support them.
        supporter = (self.capacity == 0) & (age >= 16) & (age < 60)
        supported = np.bincount(self.p_h, weights=supporter, minlength=H) > 0
        poor = (pc < 1.3 * std)[self.p_h]
        tekun = ((self.capacity == 2) & (age >= 16) & ~supported[self.p_h] & poor
                 & (rng.random(self.P) < 0.7) & (self.p_birth < self.first_day))
        people = np.flatnonzero(tekun)
        homes = self.p_h[people]
        ids = self.spells.add(homes, people, _PROG["tekun"], start[homes],
                              np.round(1.3 * std[homes]), start[homes] + rng.integers(5, 40, len(people)))
        self.on_tekun[people] = ids

    def _initial_events(self, age: np.ndarray) -> None:
        """Registered jobs and migrations that began before the simulation (so status is known)."""
        rng = self.rng
        working = np.flatnonzero(np.isin(self.job, (_LOCAL, _MIGRANT)))
        years_ago = np.clip(rng.exponential(3.0, len(working)), 0.1, np.maximum(age[working] - 16, 0.1))
        day = self.first_day - np.round(years_ago * 365.25).astype(np.int64)
        event = np.where(self.job[working] == _LOCAL, _EVENT["job_start"], _EVENT["migrant_out"])
        self.tables["employment"].add(person=working, day=day, event=event, insured=np.full(len(working), -1),
                                      recorded=day + rng.integers(5, 60, len(working)))

    # --- the month loop -------------------------------------------------------------------------------

    def run(self, on_month: Callable[[int], None] | None = None) -> World:
        for t in range(self.M):
            self._step(t)
            if on_month is not None:
                on_month(t + 1)
        return self._assemble()

    def _step(self, t: int) -> None:
        rng, H = self.rng, self.H
        day0 = self.month_start[t]
        days = self.days_in[t]
        age = (day0 - self.p_birth).astype(np.int64) / 365.25
        alive = self.p_birth < day0 + days
        self.size = np.bincount(self.p_h, weights=alive.astype(float), minlength=H)
        county_p = self.h_county[self.p_h]
        oop_h, shock = self._health(t, age, alive, day0, days)
        self._births(t, day0, days)
        lost_uninsured = self._employment(t, age, alive, county_p)
        repair, disaster_shock = self._disasters(t)
        income_h = self._income(t, age, alive)
        self._assistance(t, age, alive, income_h, oop_h, shock, lost_uninsured, disaster_shock)
        self._assets(t)
        # Savings: income and assistance in, consumption, medical bills and repairs out.
        paid = self._assistance_paid(t)
        std = self.dibao[self.h_county, (~self.h_urban).astype(int), t]
        self.ewma_income = 0.8 * self.ewma_income + 0.2 * (income_h + paid)
        consumption = np.maximum(0.55 * std * self.size, 0.8 * self.ewma_income) * rng.lognormal(0, 0.08, H)
        self.savings = np.maximum(self.savings + income_h + paid - consumption - oop_h - repair, 0.0)
        self.recent_income = np.vstack([self.recent_income[1:], income_h])
        self.recent_oop = np.vstack([self.recent_oop[1:], oop_h])

    # --- health ---------------------------------------------------------------------------------------

    def _health(self, t: int, age: np.ndarray, alive: np.ndarray, day0: np.datetime64,
                days: int) -> tuple[np.ndarray, np.ndarray]:
        """Illness onsets, courses and claims of the month; returns household out-of-pocket and shocks."""
        rng, P = self.rng, self.P
        born = alive & (age >= 0)
        claims: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

        def claim(person: np.ndarray, diagnosis: np.ndarray, total: np.ndarray, inpatient: np.ndarray,
                  serious: np.ndarray) -> None:
            claims.append((person, np.broadcast_to(diagnosis, person.shape).copy(), total,
                           np.broadcast_to(inpatient, person.shape).copy(),
                           np.broadcast_to(serious, person.shape).copy()))

        # Serious illness onset, rising with age.
        hazard = np.clip(0.0006 * np.exp(0.045 * (age - 40)), 0.00003, 0.006)
        onset = _pick(rng, born & (self.sick == 0) & (self.followup == 0), hazard)
        young = age[onset] < 45
        kinds = [_CANCER, _STROKE, _KIDNEY, _MENTAL]
        kind = np.where(young, rng.choice(kinds, len(onset), p=[0.35, 0.1, 0.2, 0.35]),
                        rng.choice(kinds, len(onset), p=[0.47, 0.33, 0.13, 0.07]))
        self.sick_k = self.sick_k + (self.sick > 0)
        self.sick[onset], self.sick_k[onset] = kind, 0
        self.sick_len[onset] = np.select([kind == _CANCER, kind == _STROKE],
                                         [rng.integers(9, 18, len(onset)), rng.integers(2, 5, len(onset))],
                                         default=10_000)
        k = self.sick_k
        sick = self.sick
        # Costs build up: cancer diagnosis, then surgery, then chemotherapy cycles that cost more each month.
        cancer = np.flatnonzero(sick == _CANCER)
        kc = k[cancer]
        cost = np.select([kc == 0, kc <= _CANCER_SURGERY - 1, kc == _CANCER_SURGERY],
                         [rng.uniform(3000, 8000, len(cancer)), rng.uniform(5000, 12000, len(cancer)),
                          rng.uniform(30000, 60000, len(cancer))],
                         default=rng.uniform(8000, 18000, len(cancer)) * (1 + 0.07 * (kc - _CANCER_SURGERY)))
        claim(cancer, _DIAG["cancer"], cost, kc >= _CANCER_SURGERY, True)
        stroke = np.flatnonzero(sick == _STROKE)
        ks = k[stroke]
        claim(stroke, _DIAG["stroke"], np.where(ks == 0, rng.uniform(30000, 80000, len(stroke)),
                                                rng.uniform(2500, 7000, len(stroke))), ks == 0, True)
        kidney = np.flatnonzero(sick == _KIDNEY)
        claim(kidney, _DIAG["chronic_kidney"], rng.uniform(6000, 9500, len(kidney))
              * np.where(k[kidney] == 0, 2.5, 1.0), k[kidney] == 0, True)
        mental = np.flatnonzero(sick == _MENTAL)
        stay = rng.random(len(mental)) < np.where(k[mental] == 0, 0.8, 0.08)
        claim(mental, _DIAG["mental"], np.where(stay, rng.uniform(12000, 30000, len(mental)),
                                                rng.uniform(800, 2500, len(mental))), stay, True)
        # The end of an intensive course: remission (follow-up visits for a year) or it continues.
        ends = np.flatnonzero((sick > 0) & (k + 1 >= self.sick_len))
        healed = (sick[ends] == _STROKE) | (rng.random(len(ends)) < 0.6)
        remission, worse = ends[healed], ends[~healed]
        self.sick_len[worse] += rng.integers(4, 10, len(worse))
        # A stroke leaves reduced capacity and, for most, a disability certified 6-12 months after onset.
        stroke_done = remission[sick[remission] == _STROKE]
        self.capacity[stroke_done] = np.where(rng.random(len(stroke_done)) < 0.45, 2, 1)
        certify = stroke_done[(self.p_grade[stroke_done] == 0) & (rng.random(len(stroke_done)) < 0.75)]
        self.stroke_cert[certify] = t + rng.integers(3, 10, len(certify))
        self.followup = np.maximum(self.followup - 1, 0)
        self.followup[remission] = 12
        self.sick[remission] = 0
        recovered = np.zeros(P, dtype=bool)
        recovered[remission] = True
        follow = _pick(rng, (self.followup > 0) & ~recovered, 0.35)
        claim(follow, np.array(DIAGNOSIS_GROUPS.index("other")), rng.uniform(400, 1800, len(follow)),
              False, False)
        due = np.flatnonzero(self.stroke_cert == t)
        self.p_grade[due] = rng.choice([1, 2, 3], len(due), p=[0.25, 0.4, 0.35])
        self.p_certified[due] = day0 + rng.integers(0, days, len(due))
        # Chronic illness: onset, monthly outpatient bills, occasional stays.
        chronic_p = np.clip(0.00025 * np.exp(0.05 * (age - 40)), 0, 0.01)
        chronic_onset = _pick(rng, born & (age >= 30) & (self.chronic < 0), chronic_p)
        kinds = [_DIAG["diabetes"], _DIAG["cardiovascular"]]
        self.chronic[chronic_onset] = rng.choice(kinds, len(chronic_onset))
        visit = _pick(rng, self.chronic >= 0, 0.45)
        stay = rng.random(len(visit)) < 0.03
        claim(visit, self.chronic[visit], np.where(stay, rng.uniform(6000, 16000, len(visit)),
                                                   rng.uniform(200, 700, len(visit))), stay, False)
        # Accidents (noise nobody can foresee), ordinary illness.
        injury_p = np.where((age >= 18) & (age < 65), 0.0014, 0.0009)
        injured = np.flatnonzero(born & (rng.random(P) < injury_p))
        severe = rng.random(len(injured)) < 0.6
        claim(injured, _DIAG["injury"], np.where(severe, rng.lognormal(np.log(22000), 0.7, len(injured)),
                                                 rng.uniform(300, 2500, len(injured))), severe, False)
        self.off_work = np.maximum(self.off_work - 1, 0)
        self.off_work[injured[severe]] = rng.integers(1, 5, severe.sum())
        ordinary_p = np.where((age < 6) | (age >= 65), 0.03, 0.012)
        ill = np.flatnonzero(born & (rng.random(P) < ordinary_p))
        stay = rng.random(len(ill)) < 0.12
        claim(ill, rng.choice([_DIAG["respiratory"], _DIAG["digestive"], _DIAG["other"]], len(ill)),
              np.where(stay, rng.uniform(2500, 9000, len(ill)), rng.uniform(80, 600, len(ill))), stay, False)
        return self._settle_claims(t, claims, day0, days)

    def _settle_claims(self, t: int, claims: list, day0: np.datetime64,
                       days: int) -> tuple[np.ndarray, np.ndarray]:
        """Reimburse the month's claims, record them; household out-of-pocket and medical shocks."""
        rng, H = self.rng, self.H
        if not claims:
            return np.zeros(H), np.zeros(H, bool)
        person, diagnosis, total, inpatient, serious = (np.concatenate(parts) for parts in zip(*claims,
                                                                                                 strict=True))
        home = self.p_h[person]
        total = np.round(total, 2)
        rate = np.array([i.inpatient_reimbursement for i in COUNTIES])[self.h_county[home]]
        rate = np.where(inpatient, rate, 0.4) - 0.05 * self.h_urban[home] * ~inpatient
        rate = np.where(diagnosis == _DIAG["chronic_kidney"], 0.8, rate)
        chronic = np.isin(diagnosis, (_DIAG["diabetes"], _DIAG["cardiovascular"]))
        rate = np.where(chronic & ~inpatient, 0.55, rate)
        # Serious-illness insurance pays part of large bills.
        insurance = np.round(total * rate + np.maximum(total - 15000, 0) * 0.15 * serious, 2)
        insurance = np.minimum(insurance, total)
        remaining = total - insurance
        on_main = (self.on_dibao[home] >= 0) | (np.bincount(self.p_h, weights=self.on_tekun >= 0,
                                                            minlength=H)[home] > 0)
        catastrophic = (remaining > 10000) & (rng.random(len(home)) < 0.2)
        assist_rate = np.select([on_main, (self.on_edge[home] >= 0) | self.h_lifted[home]], [0.7, 0.35],
                                default=np.where(catastrophic, 0.3, 0.0))
        assistance = np.round(remaining * assist_rate, 2)
        oop = np.round(total - insurance - assistance, 2)
        admission = day0 + rng.integers(0, days, len(person))
        stay_days = np.where(inpatient, rng.integers(3, 21, len(person)), 0)
        discharge = admission + stay_days
        lag = np.where(rng.random(len(person)) < 0.03, rng.integers(60, 200, len(person)),
                       rng.integers(3, 35, len(person)))
        self.tables["claims"].add(person=person, diagnosis=diagnosis, admission=admission,
                                  discharge=discharge, serious=serious, inpatient=inpatient, total=total,
                                  insurance=insurance, assistance=assistance, oop=oop,
                                  recorded=discharge + lag)
        oop_h = np.bincount(home, weights=oop, minlength=H)
        shock = np.zeros(H, bool)
        shock[home[oop > 8000]] = True
        return oop_h, shock

    def _births(self, t: int, day0: np.datetime64, days: int) -> None:
        birth = self.p_birth[self.baby_position]
        born_now = (birth >= day0) & (birth < day0 + days)
        mothers = self.mother_of_baby[born_now]
        if len(mothers):
            rng = self.rng
            births = self.p_birth[self.baby_position[born_now]]
            total = np.round(rng.uniform(3000, 9000, len(mothers)), 2)
            insurance = np.round(total * 0.6, 2)
            oop = np.round(total - insurance, 2)
            n = len(mothers)
            self.tables["claims"].add(person=mothers, diagnosis=np.full(n, _DIAG["maternity"]),
                                      admission=births, discharge=births + rng.integers(2, 6, n),
                                      serious=np.zeros(n, bool), inpatient=np.ones(n, bool), total=total,
                                      insurance=insurance, assistance=np.zeros(n), oop=oop,
                                      recorded=births + rng.integers(10, 40, n))

    # --- work -----------------------------------------------------------------------------------------

    def _employment(self, t: int, age: np.ndarray, alive: np.ndarray, county_p: np.ndarray) -> np.ndarray:
        """Job losses, returns, re-employment, migration; returns households with an uninsured job loss."""
        rng, P = self.rng, self.P
        day0, days = self.month_start[t], self.days_in[t]
        cm = self.calendar[t]
        events: list[tuple[np.ndarray, int, np.ndarray]] = []
        shock = np.array([c.job_shock[2] if c.job_shock[0] <= t <= c.job_shock[1] else 1.0 for c in COUNTIES])
        returns = np.array([c.return_shock[2] if c.return_shock[0] <= t <= c.return_shock[1] else 1.0
                            for c in COUNTIES])
        # Out of work: a cancer patient once the surgery comes (working less before), a stroke at once,
        # kidney failure half the months, mental illness after the first month.
        cancer = self.sick == _CANCER
        intensive = np.where(cancer, self.sick_k >= _CANCER_SURGERY, self.sick_k >= 1)
        intensive |= self.sick == _STROKE
        sick_out = (self.sick > 0) & intensive
        kidney = np.flatnonzero(sick_out & (self.sick == _KIDNEY))
        sick_out[kidney[rng.random(len(kidney)) < 0.5]] = False
        self._sick_less = cancer & (self.sick_k >= 1) & ~intensive
        # A carer: the spouse or head of a seriously ill person in the intensive phase.
        caring = (self.sick > 0) & intensive & (self.sick_k <= _CANCER_SURGERY + 6)
        ill_home = np.bincount(self.p_h, weights=caring, minlength=self.H) > 0
        carer = ill_home[self.p_h] & (self.sick == 0) & self.p_couple
        local = self.job == _LOCAL
        loss_p = 0.008 * shock[county_p] * np.where(age >= 50, 1.4, 1.0)
        loss_p = np.where(sick_out, 0.35, loss_p)
        losers = _pick(rng, local, loss_p)
        lose = np.zeros(P, dtype=bool)
        lose[losers] = True
        events.append((losers, _EVENT["job_loss"], self.insured[losers].astype(np.int64)))
        covered = losers[self.insured[losers]]
        self.benefit_left[covered] = rng.integers(3, 13, len(covered))
        migrant = self.job == _MIGRANT
        return_p = 0.005 * returns[county_p] * np.where(age >= 45, 1.6, 1.0)
        return_p = np.where(sick_out, 0.6, np.where(carer, 0.15, return_p))
        returning = _pick(rng, migrant, return_p)
        back = np.zeros(P, dtype=bool)
        back[returning] = True
        events.append((returning, _EVENT["migrant_return"], np.full(len(returning), -1)))
        working = (self.job == _LOCAL) | (self.job == _MIGRANT) | (self.job == _BUSINESS)
        retire = working & (age >= np.where(self.p_sex == 0, 60, 55) + 5 * ~self.h_urban[self.p_h])
        failing = _pick(rng, self.job == _BUSINESS, np.where(sick_out, 0.2, 0.004))
        fail = np.zeros(P, dtype=bool)
        fail[failing] = True
        self.job = np.where(lose | back | fail | retire, _NONE, self.job)
        self.unemployed_months = np.where(lose | back | fail, 0, self.unemployed_months + (self.job == _NONE))
        # Young people out of school look for work; older farmers stop.
        able = alive & (age >= 16) & (age < 60) & (self.capacity < 2) & (self.sick == 0)
        able &= (self.off_work == 0) & (~self.p_school0 | (age >= 22))
        seeking = able & (self.job == _NONE) & ~carer
        poor = self.savings[self.p_h] < 3 * np.maximum(self.size[self.p_h], 1) * 500
        hire_p = 0.09 * np.where(age >= 50, 0.45, 1.0) * np.where(poor, 1.4, 1.0) / shock[county_p]
        hire_p *= np.where(self.unemployed_months < 1, 0.3, 1.0)  # a spell lasts at least a month or so
        rural = ~self.h_urban[self.p_h]
        spring = 4 if cm in (2, 3) else 1  # after the Spring Festival
        migrate_p = np.where(rural & (age < 50), 0.02 * spring / returns[county_p], 0)
        draw = np.ones(P)
        candidates = np.flatnonzero(seeking | (self.job == _FARM))
        draw[candidates] = rng.random(len(candidates))
        hired = seeking & (draw < hire_p)
        leaves = seeking & ~hired & (draw < hire_p + migrate_p)
        farmer_moves = (self.job == _FARM) & able & (draw < 0.003 * spring)
        leaves |= farmer_moves & rural & (age < 50)
        hired |= farmer_moves & ~leaves
        insured_share = np.array([c.insured_share for c in COUNTIES])[county_p, rural.astype(int)]
        hires, movers = np.flatnonzero(hired), np.flatnonzero(leaves)
        self.insured[hires] = rng.random(len(hires)) < insured_share[hires]
        self.insured[movers] = rng.random(len(movers)) < 0.25
        factor = np.where(self.capacity == 1, 0.7, 1.0)
        self.wage[hires] = self.wage_local_level[hires] * factor[hires] * rng.uniform(0.85, 1.05, len(hires))
        away = self.wage_migrant_level[movers] * factor[movers]
        self.wage[movers] = away * rng.uniform(0.85, 1.05, len(movers))
        self.job = np.where(hired, _LOCAL, np.where(leaves, _MIGRANT, self.job))
        self.unemployed_months = np.where(hired | leaves, 0, self.unemployed_months)
        events.append((np.flatnonzero(hired), _EVENT["job_start"], np.full(hired.sum(), -1)))
        events.append((np.flatnonzero(leaves), _EVENT["migrant_out"], np.full(leaves.sum(), -1)))
        for people, event, insured in events:
            day = day0 + rng.integers(0, days, len(people))
            uninsured_loss = (event == _EVENT["job_loss"]) & (insured == 0)
            n = len(people)
            lag = np.where(uninsured_loss, rng.integers(20, 90, n), rng.integers(5, 45, n))
            self.tables["employment"].add(person=people, day=day, event=np.full(len(people), event),
                                          insured=insured, recorded=day + lag)
        lost_uninsured = np.zeros(self.H, bool)
        lost_uninsured[self.p_h[lose & ~self.insured]] = True
        self._carer = carer
        self._sick_out = sick_out
        return lost_uninsured

    # --- disasters ------------------------------------------------------------------------------------

    def _disasters(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """The month's disasters and their damage; returns repair costs and housing shocks per household."""
        rng, H = self.rng, self.H
        cm, day0, days = self.calendar[t], self.month_start[t], self.days_in[t]
        repair = np.zeros(H)
        shocked = np.zeros(H, bool)
        for c, info in enumerate(COUNTIES):
            towns = np.unique(self.village_township[self.village_county == c])
            for kind, yearly in info.hazards:
                season = _SEASONS[kind]
                if cm not in season:
                    continue
                hits = rng.random(len(towns)) < yearly / len(season) / max(1, len(towns) / 3)
                for town in towns[hits]:
                    self._one_disaster(t, c, town, kind, day0, days, repair, shocked)
        return repair, shocked

    def _one_disaster(self, t: int, c: int, town: int, kind: str, day0: np.datetime64, days: int,
                      repair: np.ndarray, shocked: np.ndarray) -> None:
        rng = self.rng
        level = rng.choice(3, p=[0.4, 0.45, 0.15])  # village, township, county
        villages = np.flatnonzero(self.village_township == town)
        village = villages[rng.integers(0, len(villages))]
        code = self.village_code[village]
        if level == 0:
            area = self.h_village == village
        elif level == 1:
            area = self.h_township == town
            code = code[:9] + "000"
        else:
            area = self.h_county == c
            code = code[:6] + "000000"
        severity = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.22, 0.08]))
        start = day0 + rng.integers(0, days)
        end = start + rng.integers(0, 12)
        number = len(self.tables["disasters"])
        self.tables["disasters"].add(code=np.array([code]), kind=np.array([DISASTER_TYPES.index(kind)]),
                                     start=np.array([start]), end=np.array([end]),
                                     severity=np.array([severity]),
                                     recorded=np.array([start + rng.integers(1, 10)]))
        rural = ~self.h_urban
        hit = np.flatnonzero(area & (rng.random(self.H) < [0.25, 0.45, 0.65, 0.85][severity - 1]
                                     * np.where(rural, 1.0, 0.25)))
        if not len(hit):
            return
        n = len(hit)
        # The coming harvest is lost in part: the next June or November harvest.
        crop_share = np.clip(rng.beta(2, 5, n) + 0.15 * (severity - 1), 0, 1) * rural[hit]
        if kind == "earthquake":
            crop_share *= 0.2
        cm = self.calendar[t]
        ends = [e for e in _HARVEST_ENDS if e > cm] or [_HARVEST_ENDS[0] + 12]
        until = t + (ends[0] - cm)
        months_lost = [(m - 1) % 12 for m in range(cm + 1, ends[0] + 1)]
        share_of_year = _HARVEST[months_lost].sum() if months_lost else 0.0
        self.crop_hit[hit] = np.maximum(self.crop_hit[hit], crop_share)
        self.crop_until[hit] = np.maximum(self.crop_until[hit], until)
        crop_loss = np.round(crop_share * self.farm_value[hit] * share_of_year * 1.3, -1)
        houses = kind in ("flood", "landslide", "earthquake", "typhoon", "hail")
        damage_p = np.array([[0.85, 0.13, 0.02, 0.0], [0.7, 0.22, 0.07, 0.01], [0.5, 0.3, 0.15, 0.05],
                             [0.3, 0.35, 0.22, 0.13]])[severity - 1]
        damage = rng.choice(4, n, p=damage_p) if houses else np.zeros(n, np.int64)
        if kind == "hail":
            damage = np.minimum(damage, 1)
        house_value = np.array([0.0, 4000.0, 25000.0, 80000.0])[damage] * rng.uniform(0.6, 1.4, n)
        repair[hit] += house_value * rng.uniform(0.5, 1.0, n)
        shocked[hit[damage >= 2]] = True
        assessed = rng.random(n) < 0.9
        assessed &= (crop_loss + house_value) > 0
        if assessed.any():
            date = end + rng.integers(7, 45, n)
            recorded = date + rng.integers(0, 25, n)
            amount = np.round(crop_loss + house_value, -1)
            self.tables["losses"].add(disaster=np.full(assessed.sum(), number), household=hit[assessed],
                                      assessed=date[assessed], crop=crop_loss[assessed],
                                      damage=damage[assessed], amount=amount[assessed],
                                      recorded=recorded[assessed])
        collapsed = hit[damage == 3]
        if len(collapsed):
            pay = self.month_start[min(t + 2, self.M - 1)] + rng.integers(0, 28, len(collapsed))
            keep = pay < self.month_start[-1]
            n = int(keep.sum())
            self.tables["oneoff"].add(household=collapsed[keep], programme=np.full(n, _PROG["housing"]),
                                      day=pay[keep], amount=np.round(rng.uniform(20000, 40000, n), -2),
                                      recorded=pay[keep] + rng.integers(5, 30, n))

    # --- income ---------------------------------------------------------------------------------------

    def _income(self, t: int, age: np.ndarray, alive: np.ndarray) -> np.ndarray:
        """Income of the month by person and source; returns household totals."""
        rng, H = self.rng, self.H
        cm = self.calendar[t]
        rows: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]] = []  # household, person, source, amount
        at_work = ~self._sick_out & (self.off_work == 0)
        share = np.where(self._carer & (self.job == _LOCAL), 0.6, 1.0) * np.where(self._sick_less, 0.6, 1.0)
        share *= at_work
        people = np.flatnonzero(((self.job == _LOCAL) | (self.job == _MIGRANT)) & (share > 0))
        wage = self.wage[people] * share[people] * rng.lognormal(0, 0.07, len(people))
        if cm == 1:  # migrant workers bring the year-end bonus home
            migrants = self.job[people] == _MIGRANT
            wage[migrants] *= rng.uniform(1.3, 1.8, migrants.sum())
        rows.append((self.p_h[people], people, _SOURCE["wage"], wage))
        # Farmers take casual work (零工) in some months, more in the slack season; unregistered.
        slack = 0.6 if cm in (1, 2, 3, 7, 8, 12) else 0.35
        casual = _pick(rng, (self.job == _FARM) & at_work & (age < 65), slack)
        rows.append((self.p_h[casual], casual, _SOURCE["wage"],
                     self.wage_local_level[casual] * _CASUAL / 0.45 * rng.lognormal(-0.08, 0.4, len(casual))))
        benefit = np.flatnonzero(self.benefit_left > 0)
        rows.append((self.p_h[benefit], benefit, _SOURCE["transfer"], np.full(len(benefit), 0.8 * MIN_WAGE)))
        self.benefit_left = np.maximum(self.benefit_left - 1, 0)
        business = np.flatnonzero((self.job == _BUSINESS) & at_work)
        rows.append((self.p_h[business], business, _SOURCE["business"],
                     self.business_level[business] * rng.lognormal(0, 0.35, len(business))))
        old = np.flatnonzero(alive & (age >= 60))
        pension = self.basic_pension[old] + np.where(age[old] >= np.where(self.p_sex[old] == 0, 60, 55),
                                                     self.retiree_pension[old], 0.0)
        rows.append((self.p_h[old], old, _SOURCE["pension"], pension))
        # Household farming: seasonal, needs hands, lost to disasters until the harvest after them.
        labour = np.bincount(self.p_h, weights=self._farm_labour(age), minlength=H)
        hit = np.where(t <= self.crop_until, 1 - self.crop_hit, 1.0)
        self.crop_hit = np.where(t < self.crop_until, self.crop_hit, 0.0)
        farm = (self.farm_value * _HARVEST[cm - 1] * np.minimum(1, labour / 2) * hit
                * rng.lognormal(0, 0.3, H))
        homes = np.flatnonzero(farm > 5)
        rows.append((homes, np.full(len(homes), -1), _SOURCE["farming"], farm[homes]))
        for amount, source in ((self.property_income, "property"), (self.transfer_income, "transfer")):
            homes = np.flatnonzero(amount > 0)
            rows.append((homes, np.full(len(homes), -1), _SOURCE[source], amount[homes]))
        household = np.concatenate([r[0] for r in rows])
        person = np.concatenate([r[1] for r in rows])
        source = np.concatenate([np.full(len(r[0]), r[2]) for r in rows])
        amount = np.round(np.concatenate([r[3] for r in rows]), 2)
        # Recorded 1-2 months after the month (pensions fastest, farm surveys slowest), a few very late.
        end = self.month_start[t + 1]
        n = len(household)
        low = np.select([source == _SOURCE["pension"], source == _SOURCE["farming"]], [3, 10], default=5)
        high = np.select([source == _SOURCE["pension"], source == _SOURCE["farming"]], [25, 55], default=40)
        lag = (low + rng.random(n) * (high - low)).astype(np.int64)
        late = np.flatnonzero(rng.random(n) < 0.02)
        lag[late] = rng.integers(60, 200, len(late))
        self.tables["income"].add(household=household, person=person, month=np.full(n, t), source=source,
                                  amount=amount, recorded=end + lag)
        return np.bincount(household, weights=amount, minlength=H)

    # --- assistance -----------------------------------------------------------------------------------

    def _assistance(self, t: int, age: np.ndarray, alive: np.ndarray, income_h: np.ndarray, oop_h: np.ndarray,
                    shock: np.ndarray, lost_uninsured: np.ndarray, disaster_shock: np.ndarray) -> None:
        """Applications, approvals (with lags), reviews and exits, one-off help after shocks."""
        rng, H, M = self.rng, self.H, self.M
        cm, day0 = self.calendar[t], self.month_start[t]
        urban = (~self.h_urban).astype(int)
        std = self.dibao[self.h_county, urban, t]
        size = np.maximum(self.size, 1)
        # What the civil-affairs office sees: the last three months (net of medical bills, which the
        # rigid-spending rule deducts), minus the employment-cost deduction per earner.
        earning = (self.job == _LOCAL) | (self.job == _MIGRANT) | (self.job == _BUSINESS)
        earners = np.bincount(self.p_h, weights=earning, minlength=H)
        seen = (self.recent_income.mean(axis=0) - self.recent_oop.mean(axis=0)
                - EMPLOYMENT_COST_DEDUCTION * earners) / size
        assets_ok = self.savings / size < DEPOSIT_LIMIT_MONTHS * std
        tekun_home = np.bincount(self.p_h, weights=self.on_tekun >= 0, minlength=H) > 0
        on_main = (self.on_dibao >= 0) | tekun_home
        take_up = np.array([c.take_up for c in COUNTIES])[self.h_county]
        # Approved dibao starts now.
        starting = np.flatnonzero(self.pending == t)
        if len(starting):
            self._end_spell(self.on_edge, starting, day0 - 1)
            n = len(starting)
            ids = self.spells.add(starting, np.full(n, -1), _PROG["dibao"], np.full(n, day0),
                                  self.pending_amount[starting], day0 + rng.integers(3, 30, n))
            self.on_dibao[starting] = ids
            self.pending[starting] = -1
            self._check_assets(starting, day0 - rng.integers(20, 50, len(starting)))
        # Applications: eligible households apply with some chance; approval takes 2-4 months.
        eligible = (seen < std) & assets_ok & ~on_main & (self.pending < 0) & ~self.never_apply
        # Families live on their savings first: few apply while they still have some months of them.
        savings_left = self.savings / size < 4 * std
        applying = _pick(rng, eligible, np.where(savings_left, 0.35, 0.05) * take_up)
        start = t + rng.integers(2, 5, len(applying))
        applying, start = applying[start < M], start[start < M]
        self.pending[applying] = start
        self.pending_amount[applying] = np.round(np.maximum(std - seen, 60) * size)[applying]
        # Yearly review: income stably above the standard, and someone able to work, ends dibao.
        reviewed = (self.on_dibao >= 0) & (rng.random(H) < 1 / 12)
        able_person = (self.capacity == 0) & alive & (age >= 16) & (age < 60)
        able = np.bincount(self.p_h, weights=able_person, minlength=H)
        leaves = reviewed & (seen > 1.3 * std) & (able > 0)
        self._end_spell(self.on_dibao, np.flatnonzero(leaves), day0 + self.days_in[t] - 1)
        # Edge families: found mostly in the April and October campaigns.
        campaign = 0.25 if cm in (4, 10) else 0.02
        edge = ((seen >= std) & (seen < 1.5 * std) & assets_ok & ~on_main & (self.on_edge < 0)
                & (self.pending < 0) & (rng.random(H) < campaign * take_up))
        homes = np.flatnonzero(edge)
        self.on_edge[homes] = self.spells.add(homes, np.full(len(homes), -1), _PROG["edge"],
                                              day0 + rng.integers(0, 28, len(homes)), np.zeros(len(homes)),
                                              day0 + rng.integers(28, 60, len(homes)))
        self._check_assets(homes, day0 + rng.integers(0, 20, len(homes)))
        edge_out = (self.on_edge >= 0) & (rng.random(H) < 1 / 12) & (seen > 2 * std)
        self._end_spell(self.on_edge, np.flatnonzero(edge_out), day0 + self.days_in[t] - 1)
        # 特困: no labour capacity and nobody able to support them; approved after 2-3 months.
        supported = able > 0
        starting = np.flatnonzero(self.pending_tekun == t)
        if len(starting):
            homes = self.p_h[starting]
            self.on_tekun[starting] = self.spells.add(
                homes, starting, _PROG["tekun"], np.full(len(starting), day0), np.round(1.3 * std[homes]),
                day0 + rng.integers(3, 30, len(starting)))
            self.pending_tekun[starting] = -1
        poor = (seen < 1.3 * std) & (self.on_dibao < 0) & ~self.never_apply & ~supported
        candidate = (alive & (self.capacity == 2) & (age >= 16) & (self.on_tekun < 0)
                     & (self.pending_tekun < 0) & poor[self.p_h])
        enrol = _pick(rng, candidate, 0.12 * take_up[self.p_h])
        start = t + rng.integers(2, 4, len(enrol))
        self.pending_tekun[enrol[start < M]] = start[start < M]
        # Temporary assistance after a shock, for households without much savings; some random help.
        hard = self.savings / size < 10 * std
        shocked = (shock | lost_uninsured | disaster_shock) & hard & ~on_main
        chance = np.where(shocked, 0.4 * take_up, np.where((seen < 1.2 * std) & ~on_main, 0.003, 0.0))
        helped = np.flatnonzero(rng.random(H) < chance)
        pay_month = np.minimum(t + rng.integers(1, 3, len(helped)), M)
        keep = pay_month < M
        helped, pay_month = helped[keep], pay_month[keep]
        pay = self.month_start[pay_month] + rng.integers(0, 28, len(helped))
        n = len(helped)
        self.tables["oneoff"].add(household=helped, programme=np.full(n, _PROG["temporary"]), day=pay,
                                  amount=np.round(rng.uniform(1000, 8000, n), -2),
                                  recorded=pay + rng.integers(3, 25, n))
        # Education help in September for dibao and edge families with children in school.
        if cm == 9:
            pupils = np.bincount(self.p_h, weights=self.p_school0 & alive & (age < 22), minlength=H)
            homes = np.flatnonzero(((self.on_dibao >= 0) | (self.on_edge >= 0)) & (pupils > 0))
            pay = day0 + rng.integers(0, 28, len(homes))
            n = len(homes)
            amount = np.round(1000 * pupils[homes] * rng.uniform(0.8, 1.5, n), -1)
            self.tables["oneoff"].add(household=homes, programme=np.full(n, _PROG["education"]), day=pay,
                                      amount=amount, recorded=pay + rng.integers(5, 30, n))

    def _end_spell(self, pointer: np.ndarray, homes: np.ndarray, day: np.datetime64 | np.ndarray) -> None:
        open_ids = pointer[homes]
        homes = homes[open_ids >= 0]
        open_ids = open_ids[open_ids >= 0]
        self.spells.end[open_ids] = np.maximum(day, self.spells.start[open_ids])
        pointer[homes] = -1

    def _assistance_paid(self, t: int) -> np.ndarray:
        """Monthly cash of ongoing dibao and 特困 spells, per household."""
        amount = np.zeros(self.H)
        dibao = self.on_dibao >= 0
        amount[dibao] += self.spells.amount[self.on_dibao[dibao]]
        tekun = np.flatnonzero(self.on_tekun >= 0)
        np.add.at(amount, self.p_h[tekun], self.spells.amount[self.on_tekun[tekun]])
        return amount

    # --- assets ---------------------------------------------------------------------------------------

    def _assets(self, t: int) -> None:
        """A yearly household economic check for about half the households, in a month of their own."""
        rng = self.rng
        if t == 0:
            before = np.flatnonzero(rng.random(self.H) < 0.8)
            self._check_assets(before, self.first_day - rng.integers(15, 365, len(before)))
            self.check_month = rng.integers(1, 13, self.H)
        due = np.flatnonzero((self.check_month == self.calendar[t]) & (rng.random(self.H) < 0.5))
        self._check_assets(due, self.month_start[t] + rng.integers(0, self.days_in[t], len(due)))

    def _check_assets(self, homes: np.ndarray, day: np.ndarray) -> None:
        rng = self.rng
        n = len(homes)
        if not n:
            return
        business = np.bincount(self.p_h, weights=self.job == _BUSINESS, minlength=self.H)[homes] > 0
        self.tables["assets"].add(household=homes, day=day,
                                  deposits=np.round(self.savings[homes] * rng.uniform(0.6, 1.0, n), -2),
                                  vehicles=self.vehicles[homes], houses=self.houses[homes], business=business,
                                  recorded=day + rng.integers(5, 35, n))

    # --- assembling the tables ------------------------------------------------------------------------

    def _assemble(self) -> World:
        ids = np.array([f"H{i:07d}" for i in range(self.H)])
        members = self.members_table()
        person_ids = self.person_ids
        world: World = {}
        world["regions"] = pd.DataFrame({
            "region_code": pd.Series(pd.array(self.village_code, dtype="string")),
            "name": pd.Series(pd.array(self.village_name, dtype="string")),
            "urban_rural": _strings(np.array(["urban", "rural"]), (~self.village_urban).astype(int)),
        })
        world["standards"] = self.standards_table()
        lifted = pd.array(self.h_lifted_year, dtype="Int64")
        lifted[~self.h_lifted] = pd.NA
        world["households"] = pd.DataFrame({
            "household_id": _strings(ids, np.arange(self.H)),
            "village_code": _strings(self.village_code, self.h_village),
            "urban_rural": _strings(np.array(["urban", "rural"]), (~self.h_urban).astype(int)),
            "lifted_out_year": lifted,
            "registered_at": _days(self.h_registered),
        })
        world["members"] = members
        income = self.tables["income"]
        month_labels = np.array([str(self.start + i) for i in range(self.M)])
        household = income.column("household", np.int64)
        person = income.column("person", np.int64)
        world["income"] = pd.DataFrame({
            "household_id": _strings(ids, household),
            "person_id": _strings(person_ids, person),
            "month": _strings(month_labels, income.column("month", np.int64)),
            "source": _strings(np.array(INCOME_SOURCES), income.column("source", np.int64)),
            "amount": income.column("amount"),
            "recorded_at": _days(income.column("recorded", "datetime64[D]")),
        })
        claims = self.tables["claims"]
        person = claims.column("person", np.int64)
        order = np.lexsort((person, claims.column("admission", "datetime64[D]")))
        world["medical_claims"] = pd.DataFrame({
            "claim_id": _numbered("C", len(order)),
            "household_id": _strings(ids, self.p_h[person[order]]),
            "person_id": _strings(person_ids, person[order]),
            "admission_date": _days(claims.column("admission", "datetime64[D]")[order]),
            "discharge_date": _days(claims.column("discharge", "datetime64[D]")[order]),
            "diagnosis_group": _strings(DIAGNOSIS_GROUPS, claims.column("diagnosis", np.int64)[order]),
            "serious_illness": claims.column("serious", bool)[order].astype(bool),
            "inpatient": claims.column("inpatient", bool)[order].astype(bool),
            "total_cost": claims.column("total")[order],
            "insurance_paid": claims.column("insurance")[order],
            "assistance_paid": claims.column("assistance")[order],
            "out_of_pocket": claims.column("oop")[order],
            "recorded_at": _days(claims.column("recorded", "datetime64[D]")[order]),
        })
        disasters = self.tables["disasters"]
        n_dis = len(disasters)
        disaster_ids = np.char.add("D", np.arange(n_dis).astype(str))
        world["disasters"] = pd.DataFrame({
            "disaster_id": pd.Series(pd.array(disaster_ids, dtype="string")),
            "region_code": pd.Series(pd.array(disasters.column("code", str).astype(str), dtype="string")),
            "disaster_type": _strings(np.array(DISASTER_TYPES), disasters.column("kind", np.int64)),
            "start_date": _days(disasters.column("start", "datetime64[D]")),
            "end_date": _days(disasters.column("end", "datetime64[D]")),
            "severity": disasters.column("severity", np.int64).astype(np.int64),
            "recorded_at": _days(disasters.column("recorded", "datetime64[D]")),
        })
        losses = self.tables["losses"]
        world["disaster_losses"] = pd.DataFrame({
            "loss_id": _numbered("L", len(losses)),
            "disaster_id": _strings(disaster_ids, losses.column("disaster", np.int64)),
            "household_id": _strings(ids, losses.column("household", np.int64)),
            "assessed_date": _days(losses.column("assessed", "datetime64[D]")),
            "crop_loss": losses.column("crop"),
            "housing_damage": _strings(np.array(HOUSING_DAMAGE), losses.column("damage", np.int64)),
            "amount": losses.column("amount"),
            "recorded_at": _days(losses.column("recorded", "datetime64[D]")),
        })
        employment = self.tables["employment"]
        person = employment.column("person", np.int64)
        day = employment.column("day", "datetime64[D]")
        order = np.lexsort((person, day))
        insured = employment.column("insured", np.int64)[order]
        flag = pd.array(insured == 1, dtype="boolean")
        flag[insured < 0] = pd.NA
        world["employment_events"] = pd.DataFrame({
            "event_id": _numbered("E", len(order)),
            "household_id": _strings(ids, self.p_h[person[order]]),
            "person_id": _strings(person_ids, person[order]),
            "event_date": _days(day[order]),
            "event_type": _strings(np.array(EMPLOYMENT_EVENTS), employment.column("event", np.int64)[order]),
            "unemployment_insured": flag,
            "recorded_at": _days(employment.column("recorded", "datetime64[D]")[order]),
        })
        world["assistance"] = self._assistance_table(ids, person_ids)
        world["assets"] = self._assets_table(ids)
        return {name: finalize_dtypes(TABLES[name], world[name].reset_index(drop=True)) for name in TABLES}

    def _assistance_table(self, ids: np.ndarray, person_ids: np.ndarray) -> pd.DataFrame:
        s = self.spells
        n = s.n
        oneoff = self.tables["oneoff"]
        day = oneoff.column("day", "datetime64[D]")
        household = np.concatenate([s.household[:n], oneoff.column("household", np.int64)])
        start = np.concatenate([s.start[:n], day])
        order = np.lexsort((household, start))
        programme = np.concatenate([s.programme[:n], oneoff.column("programme", np.int64)])
        recorded = np.concatenate([s.recorded[:n], oneoff.column("recorded", "datetime64[D]")])
        end = np.concatenate([s.end[:n], day])
        # A spell still open, or ending after the last simulated month, has no end date yet.
        end = np.where(end >= self.month_start[-1], np.datetime64("NaT"), end)
        return pd.DataFrame({
            "assistance_id": _numbered("A", len(order)),
            "household_id": _strings(ids, household[order]),
            "person_id": _strings(person_ids, np.concatenate([s.person[:n], np.full(len(day), -1)])[order]),
            "programme": _strings(PROGRAMMES, programme[order]),
            "start_date": _days(start[order]),
            "end_date": _days(end[order]),
            "amount": np.concatenate([s.amount[:n], oneoff.column("amount")])[order],
            "recorded_at": _days(recorded[order]),
        })

    def _assets_table(self, ids: np.ndarray) -> pd.DataFrame:
        a = self.tables["assets"]
        frame = pd.DataFrame({
            "h": a.column("household", np.int64),
            "day": a.column("day", "datetime64[D]"),
            "deposits": a.column("deposits"),
            "vehicles": a.column("vehicles", np.int64).astype(np.int64),
            "houses": a.column("houses", np.int64).astype(np.int64),
            "business": a.column("business", bool).astype(bool),
            "recorded": a.column("recorded", "datetime64[D]"),
        })
        # One check per household and day (a campaign and a yearly check can fall on the same day).
        frame = frame.drop_duplicates(["h", "day"], keep="first").sort_values(["day", "h"], kind="stable")
        return pd.DataFrame({
            "household_id": _strings(ids, frame["h"].to_numpy()),
            "reported_date": _days(frame["day"].to_numpy()),
            "deposits": frame["deposits"].to_numpy(),
            "vehicles": frame["vehicles"].to_numpy(),
            "houses": frame["houses"].to_numpy(),
            "registered_business": frame["business"].to_numpy(),
            "recorded_at": _days(frame["recorded"].to_numpy()),
        })


# ---------------------------------------------------------------------------------------------------------
# Faults of real extracts (``--messy``)

FAULTS: dict[str, tuple[str, str, str | None, str]] = {
    "duplicate_row": ("income", "household_id", "duplicate_key", "an income row delivered twice"),
    "duplicate_claim": ("medical_claims", "claim_id", "duplicate_key", "a claim delivered twice"),
    "missing_month": ("income", "month", None, "all income rows of a household and month are absent"),
    "late_record": ("income", "recorded_at", None, "an income row recorded 6-12 months late"),
    "bad_id_check_char": ("members", "id_number", "resident_id", "a resident ID number with a wrong check "
                          "character"),
    "bad_id_length": ("members", "id_number", "resident_id", "a resident ID number missing its last "
                      "character"),
    "negative_amount": ("income", "amount", "range", "an income amount with a minus sign"),
    "negative_assistance": ("assistance", "amount", "range", "an assistance amount with a minus sign"),
    "unknown_village": ("households", "village_code", "foreign_key", "a village code not in regions"),
    "unknown_source": ("income", "source", "allowed", "an income source outside the contract's codes"),
    "unknown_programme": ("assistance", "programme", "allowed", "a programme outside the contract's codes"),
    "dangling_person": ("medical_claims", "person_id", "foreign_key", "a claim for a person not in members"),
    "discharge_before_admission": ("medical_claims", "discharge_date", "not_before", "discharge date before "
                                   "the admission date"),
    "recorded_before_event": ("employment_events", "recorded_at", "known_before_event", "an employment "
                              "event recorded before it happened"),
}
"""Fault name -> (table, column, rule of ``doudi validate`` that must name it or None when no contract
rule can see it, description)."""


def inject_faults(world: World, *, seed: int, rate: float = 0.001) -> tuple[World, pd.DataFrame]:
    """Break a few rows of a clean world the way real department extracts break.

    Each fault of :data:`FAULTS` hits about ``rate`` of its table's rows (at least one row, when the
    table has rows to break); no row gets two faults. Tables without faults are returned as they are.

    Returns:
        The messy world, and the manifest of injected faults: one row per fault with ``table``,
        ``row`` (1-based data row of the table as returned and as written by ``doudi.io.write_world``,
        the first row under a CSV header being 1; missing for rows that were removed), ``column``,
        ``fault`` (a key of :data:`FAULTS`), ``rule`` (the ``doudi validate`` rule that must report
        this row and column, missing for faults no contract rule can see: late records, missing
        months) and ``detail`` (what was done, never a personal value). For a duplicate, ``row`` is
        the later copy (the one ``validate`` reports). ``doudi generate --messy`` writes the manifest
        as ``_faults.json``: ``{"seed": ..., "faults": [{"table": ..., "row": ..., "column": ...,
        "fault": ..., "rule": ..., "detail": ...}, ...]}``.
    """
    rng = np.random.default_rng([seed, 1])
    out = dict(world)
    manifest: list[pd.DataFrame] = []

    def count(frame: pd.DataFrame) -> int:
        return max(1, round(rate * len(frame))) if len(frame) else 0

    def record(table: str, rows: np.ndarray, fault: str, detail: str | np.ndarray) -> None:
        _, column, rule, _ = FAULTS[fault]
        rows = np.asarray(rows, dtype=np.float64)
        manifest.append(pd.DataFrame({
            "table": table, "row": pd.array(np.where(np.isnan(rows), np.nan, rows + 1)).astype("Int64"),
            "column": column, "fault": fault, "rule": pd.array([rule] * len(rows), dtype="string"),
            "detail": detail}))

    # Income: missing months first (rows disappear), then cell faults, then duplicates (rows appear).
    income = world["income"].copy()
    if len(income):
        month_key = income["household_id"].astype(str) + " " + income["month"].astype(str)
        codes, keys = pd.factorize(month_key)
        gone = rng.choice(len(keys), min(len(keys), count(income) // 2 + 1), replace=False)
        keep = ~np.isin(codes, gone)
        record("income", np.full(len(gone), np.nan), "missing_month",
               "removed the income rows of household and month " + pd.Series(keys[gone]).to_numpy(dtype=str))
        pool = rng.permutation(np.flatnonzero(keep & (income["amount"].to_numpy() > 0)))
        picks = _split(pool, [count(income)] * 4)
        late, negative, unknown, duplicate = picks
        income["recorded_at"] = income["recorded_at"].to_numpy().copy()
        recorded = income["recorded_at"].to_numpy().copy()
        recorded[late] = recorded[late] + rng.integers(180, 366, len(late)).astype("timedelta64[D]")
        income["recorded_at"] = recorded
        amount = income["amount"].to_numpy().copy()
        amount[negative] = -amount[negative]
        income["amount"] = amount
        source = income["source"].copy()
        source.iloc[unknown] = rng.choice(["salary", "工资", "other"], len(unknown))
        income["source"] = source
        income, where, copies = _rebuild(income, keep, duplicate)
        record("income", where[late], "late_record", "recorded_at moved 180-365 days later")
        record("income", where[negative], "negative_amount", "amount negated")
        record("income", where[unknown], "unknown_source", "source replaced by a code not in the contract")
        record("income", copies, "duplicate_row", "copy of the row above")
        out["income"] = income

    claims = world["medical_claims"].copy()
    if len(claims):
        pool = rng.permutation(len(claims))
        dangling, backwards, duplicate = _split(pool, [count(claims)] * 3)
        person = claims["person_id"].copy()
        person.iloc[dangling] = claims["household_id"].iloc[dangling].to_numpy(dtype=object) + "-99"
        claims["person_id"] = person
        discharge = claims["discharge_date"].to_numpy().copy()
        discharge[backwards] = (claims["admission_date"].to_numpy()[backwards]
                                - pd.to_timedelta(rng.integers(1, 6, len(backwards)), unit="D").to_numpy())
        claims["discharge_date"] = discharge
        claims, where, copies = _rebuild(claims, np.ones(len(claims), bool), duplicate)
        record("medical_claims", where[dangling], "dangling_person",
               "person_id replaced by one not in members")
        record("medical_claims", where[backwards], "discharge_before_admission",
               "discharge_date set 1-5 days before admission_date")
        record("medical_claims", copies, "duplicate_claim", "copy of the row above")
        out["medical_claims"] = claims

    members = world["members"].copy()
    has_id = np.flatnonzero(members["id_number"].notna().to_numpy())
    if len(has_id):
        check_char, length = _split(rng.permutation(has_id), [count(members)] * 2)
        ids = members["id_number"].astype("string")
        picked = ids.iloc[check_char]
        position = picked.str.slice(17).map({c: i for i, c in enumerate(CHECK_CHARS)}).to_numpy(np.int64)
        shifted = np.array(list(CHECK_CHARS))[(position + rng.integers(1, 11, len(picked))) % 11]
        ids.iloc[check_char] = picked.str.slice(0, 17) + shifted
        ids.iloc[length] = ids.iloc[length].str.slice(0, 17)
        members["id_number"] = ids
        record("members", check_char, "bad_id_check_char", "check character replaced by another")
        record("members", length, "bad_id_length", "last character dropped")
        out["members"] = members

    homes = world["households"].copy()
    if len(homes):
        picked = rng.choice(len(homes), count(homes), replace=False)
        village = homes["village_code"].astype(object).to_numpy().copy()
        village[picked] = np.array([str(v)[:6] + "999999" for v in village[picked]], dtype=object)
        homes["village_code"] = pd.array(village, dtype="string")
        record("households", picked, "unknown_village", "village_code replaced by a code not in regions")
        out["households"] = homes

    assistance = world["assistance"].copy()
    if len(assistance):
        paid = rng.permutation(np.flatnonzero(assistance["amount"].to_numpy() > 0))
        negative, unknown = _split(paid, [count(assistance)] * 2)
        amount = assistance["amount"].to_numpy().copy()
        amount[negative] = -amount[negative]
        assistance["amount"] = amount
        programme = assistance["programme"].copy()
        programme.iloc[unknown] = rng.choice(["低保", "subsistence", "dibao2"], len(unknown))
        assistance["programme"] = programme
        record("assistance", negative, "negative_assistance", "amount negated")
        record("assistance", unknown, "unknown_programme", "programme replaced by a code not in the contract")
        out["assistance"] = assistance

    events = world["employment_events"].copy()
    if len(events):
        early = rng.choice(len(events), count(events), replace=False)
        recorded = events["recorded_at"].to_numpy().copy()
        recorded[early] = (events["event_date"].to_numpy()[early]
                           - pd.to_timedelta(rng.integers(1, 30, len(early)), unit="D").to_numpy())
        events["recorded_at"] = recorded
        record("employment_events", early, "recorded_before_event",
               "recorded_at set 1-29 days before event_date")
        out["employment_events"] = events

    faults = (pd.concat(manifest, ignore_index=True) if manifest else
              pd.DataFrame(columns=["table", "row", "column", "fault", "rule", "detail"]))
    faults = faults.sort_values(["table", "row", "column"], kind="stable", na_position="last")
    return out, faults.reset_index(drop=True)


def faults_manifest_text(faults: pd.DataFrame, *, seed: int) -> str:
    """The manifest of :func:`inject_faults` as the JSON text of ``_faults.json``."""
    import json

    records = [{k: (None if pd.isna(v) else int(v) if k == "row" else str(v)) for k, v in row.items()}
               for row in faults.to_dict("records")]
    return json.dumps({"seed": seed, "faults": records}, ensure_ascii=False, indent=1)


def _split(pool: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Consecutive, disjoint slices of ``pool`` of the given sizes (shorter when the pool runs out)."""
    bounds = np.cumsum([0, *sizes])
    return [np.sort(pool[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _rebuild(frame: pd.DataFrame, keep: np.ndarray, duplicate: np.ndarray
             ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Drop rows and insert a copy of each ``duplicate`` row right after it.

    Returns:
        The new frame, each old row's new position (-1 if dropped), and each copy's position.
    """
    kept = np.flatnonzero(keep)
    source = np.concatenate([kept, duplicate])
    is_copy = np.r_[np.zeros(len(kept), np.int64), np.ones(len(duplicate), np.int64)]
    order = np.lexsort((is_copy, source))
    position = np.empty(len(source), np.int64)
    position[order] = np.arange(len(source))
    where = np.full(len(frame), -1, np.int64)
    where[kept] = position[: len(kept)]
    return frame.take(source[order]).reset_index(drop=True), where, position[len(kept):]
