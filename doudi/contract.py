"""The data contract: the one declaration of every table doudi reads.

A bureau maps its department extracts onto these tables. Everything else derives from this module:
validation (``doudi validate``), the point-in-time cut of the feature registry (which column says when
a record happened and when it became known), the generated ``docs/data-contract.md`` and the
synthetic world.

Conventions:
    * Money is yuan (float). Months are ``YYYY-MM`` strings. Dates are ``YYYY-MM-DD``.
    * Region codes are the 12-digit statistical division code: province(2) city(2) county(2)
      township(3) village(3). ``county_code`` is its first 6 digits.
    * Every time-varying record carries the date it happened (``event``) and ``recorded_at``, the
      date it became known to the platform. A feature at as-of date T only sees records with
      ``recorded_at < T``. A record cannot be known before it happened (``recorded_at`` >= the event
      date; for a month, its first day), except in tables marked ``known_in_advance`` (standards are
      published before the month they apply to).
    * Records of a month keep arriving for a while after it, each department with its own lag. A table
      with ``complete_after_months`` n counts month m as *complete* at T once n whole months have passed
      since m ended (T on or after the first day of month m + n + 1); a few corrections come later still.
      A bureau sets n from its slowest regular source. Income declares n = 2 (in the synthetic world
      pensions arrive within days of the month's end, wages within about 40 days, farm surveys within
      about 55): at T in 2025-07 the latest complete income month is 2025-04. Income levels and drops
      are judged on complete months only; the later, partly recorded months only show how fresh the
      data are.
    * One file per table, ``<table>.csv`` (UTF-8, header row, empty cell = missing) or
      ``<table>.parquet``. Tables marked ``required`` must be present; the others are empty if absent.
      Columns not in the contract are reported and left out of the loaded world.
    * Columns marked ``sensitive`` hold personal data (resident ID numbers, birth dates, health, money
      of persons): error messages say what is wrong with them, never what the value was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

DType = Literal["str", "int", "float", "bool", "date", "month"]
Semantic = Literal["resident_id"]

PROGRAMMES = ("dibao", "tekun", "edge", "temporary", "medical", "education", "housing")
INCOME_SOURCES = ("wage", "farming", "business", "property", "transfer", "pension")
URBAN_RURAL = ("urban", "rural")
SEXES = ("M", "F")
RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "sibling", "other")
LABOUR_CAPACITY = ("full", "partial", "none")
DISASTER_TYPES = ("flood", "drought", "hail", "typhoon", "earthquake", "landslide", "frost")
HOUSING_DAMAGE = ("none", "minor", "severe", "collapsed")
EMPLOYMENT_EVENTS = ("job_start", "job_loss", "migrant_out", "migrant_return")
DIAGNOSIS_GROUPS = (
    "respiratory", "digestive", "injury", "maternity", "cardiovascular", "chronic_kidney",
    "diabetes", "mental", "cancer", "stroke", "other",
)
# Serious illnesses (大病/重特大疾病) on a typical provincial list.
SERIOUS_DIAGNOSIS_GROUPS = ("cancer", "stroke", "chronic_kidney", "mental")


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    dtype: DType
    description: str
    required: bool = True
    nullable: bool = False
    unit: str | None = None
    allowed: tuple[str, ...] | None = None
    ge: float | None = None
    le: float | None = None
    pattern: str | None = None
    sensitive: bool = False
    semantic: Semantic | None = None
    """``resident_id``: an 18-character GB 11643 resident ID number (birth date inside, check character by
    ISO 7064 MOD 11-2); when the table has ``birth_date`` and ``sex`` columns they must agree with it."""


@dataclass(frozen=True)
class ForeignKey:
    """``column`` must match ``ref_table.ref_column`` (or a prefix of it when ``prefix`` is set).

    With ``area`` set, ``column`` is a 12-digit region code that may stand for a whole area: trailing
    zeros make it a township (9 digits), county (6), city (4) or province (2), which must contain at
    least one ``ref_column`` code.
    """

    column: str
    ref_table: str
    ref_column: str
    prefix: int | None = None
    area: bool = False


@dataclass(frozen=True)
class NotBefore:
    """In every row where both are present, ``later`` is on or after ``earlier``."""

    later: str
    earlier: str


@dataclass(frozen=True)
class Balance:
    """``column`` equals ``total`` minus the ``minus`` columns, within ``tolerance`` (same unit)."""

    column: str
    total: str
    minus: tuple[str, ...]
    tolerance: float


Rule = NotBefore | Balance


@dataclass(frozen=True)
class Table:
    """One table of the contract.

    Attributes:
        event: the column that says when the record happened (None for static tables).
        known: the column that says when the record became known to the platform.
        required: the table must be supplied (the others are empty when absent).
        known_in_advance: records may be known before their event (published standards), so
            ``known >= event`` is not a rule of this table.
        complete_after_months: whole months after a month ends until its records are complete (the
            reporting lag of the slowest regular source); None when the table declares none.
        rules: cross-field rules every row must follow.
    """

    name: str
    description: str
    source: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    event: str | None = None
    known: str | None = None
    unique: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    required: bool = False
    known_in_advance: bool = False
    complete_after_months: int | None = None
    rules: tuple[Rule, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name}")


REGION_CODE = r"^\d{12}$"
COUNTY_CODE = r"^\d{6}$"
MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
ID_NUMBER = r"^\d{17}[\dX]$"

_recorded = Column("recorded_at", "date", "Date the record became known to the platform (data arrival).")

TABLES: dict[str, Table] = {}


def _add(table: Table) -> Table:
    TABLES[table.name] = table
    return table


_add(Table(
    name="regions",
    description="Villages (社区/行政村) with their 12-digit statistical division code.",
    source="civil affairs (民政)",
    columns=(
        Column("region_code", "str", "12-digit village code.", pattern=REGION_CODE),
        Column("name", "str", "Village name.", required=False, nullable=True),
        Column("urban_rural", "str", "Urban community or rural village.", allowed=URBAN_RURAL),
    ),
    primary_key=("region_code",),
    required=True,
))

_add(Table(
    name="standards",
    description="Local assistance standards per county, month and urban/rural (set per county, reset "
                "yearly).",
    source="civil affairs (民政), statistics (统计)",
    columns=(
        Column("county_code", "str", "6-digit county code (first 6 digits of the region code).",
               pattern=COUNTY_CODE),
        Column("month", "month", "Month the standard applies to.", pattern=MONTH),
        Column("urban_rural", "str", "Urban or rural standard.", allowed=URBAN_RURAL),
        Column("dibao_standard", "float", "低保标准: dibao standard.", unit="yuan/person/month", ge=0,
               le=10_000),
        Column("monitoring_line", "float", "防返贫监测线: relapse-monitoring line.", unit="yuan/person/year",
               ge=0, le=100_000),
        Column("disposable_income_last_year", "float", "Last year's local per-capita disposable income.",
               unit="yuan/person/year", ge=0, le=500_000),
        Column("consumption_last_year", "float", "Last year's local per-capita consumption expenditure.",
               unit="yuan/person/year", ge=0, le=500_000),
        Column("cpi_yoy", "float", "Consumer price index, year on year change.", unit="percent", ge=-50,
               le=100),
        Column("food_cpi_yoy", "float", "Food CPI, year on year change.", unit="percent", ge=-50, le=100,
               required=False, nullable=True),
        _recorded,
    ),
    primary_key=("county_code", "month", "urban_rural"),
    event="month",
    known="recorded_at",
    required=True,
    known_in_advance=True,
))

_add(Table(
    name="households",
    description="Households in the low-income database (and the wider rural population watched).",
    source="civil affairs (民政), rural revitalisation (乡村振兴)",
    columns=(
        Column("household_id", "str", "Household identifier (pseudonymous).", pattern=r"^\S+$"),
        Column("village_code", "str", "12-digit code of the household's village.", pattern=REGION_CODE),
        Column("urban_rural", "str", "Urban or rural household registration.", allowed=URBAN_RURAL),
        Column("lifted_out_year", "int", "Year the household was lifted out of poverty (脱贫年份), if any.",
               required=False, nullable=True, ge=2013, le=2100),
        Column("registered_at", "date", "Date the household entered the database.", required=False,
               nullable=True),
    ),
    primary_key=("household_id",),
    foreign_keys=(ForeignKey("village_code", "regions", "region_code"),),
    required=True,
))

_add(Table(
    name="members",
    description="Household members. A resident ID number, if supplied, is validated and replaced on "
                "ingest by a keyed HMAC pseudonym (`id_hash`) and its last 4 characters (`id_last4`).",
    source="public security (公安), civil affairs (民政), disabled persons' federation (残联), "
           "education (教育)",
    columns=(
        Column("person_id", "str", "Person identifier (pseudonymous).", pattern=r"^\S+$"),
        Column("household_id", "str", "Household the person belongs to."),
        Column("id_number", "str", "18-character resident ID number (GB 11643). Never stored: replaced "
               "on ingest.", required=False, nullable=True, pattern=ID_NUMBER, sensitive=True,
               semantic="resident_id"),
        Column("id_hash", "str", "HMAC-SHA256 pseudonym of the ID number (keyed by DOUDI_ID_HMAC_KEY).",
               required=False, nullable=True),
        Column("id_last4", "str", "Last 4 characters of the ID number (the most ever shown).",
               required=False, nullable=True, sensitive=True),
        Column("birth_date", "date", "Date of birth.", sensitive=True),
        Column("sex", "str", "Sex.", allowed=SEXES),
        Column("ethnic_minority", "bool", "Member of an ethnic minority."),
        Column("relation", "str", "Relation to the head of household.", allowed=RELATIONS),
        Column("disability_grade", "int", "Certified disability grade: 0 none, 1 (most severe) to 4.",
               ge=0, le=4, sensitive=True),
        Column("disability_certified_at", "date", "Date the disability was certified.", required=False,
               nullable=True),
        Column("labour_capacity", "str", "Labour capacity (劳动能力).", allowed=LABOUR_CAPACITY),
        Column("in_school", "bool", "Currently enrolled in school."),
        Column("recorded_at", "date", "Date the member's record became known.", required=False,
               nullable=True),
    ),
    primary_key=("person_id",),
    foreign_keys=(ForeignKey("household_id", "households", "household_id"),),
    unique=(("id_number",), ("id_hash",)),
    required=True,
    rules=(NotBefore("disability_certified_at", "birth_date"),),
))

_add(Table(
    name="income",
    description="Monthly income by member (or by household when `person_id` is empty) and source.",
    source="human resources and social security (人社), tax, agriculture, civil affairs",
    columns=(
        Column("household_id", "str", "Household."),
        Column("person_id", "str", "Member, empty for household-level income (e.g. farming).",
               required=False, nullable=True),
        Column("month", "month", "Month the income was earned.", pattern=MONTH),
        Column("source", "str", "Income source.", allowed=INCOME_SOURCES),
        Column("amount", "float", "Income earned in the month.", unit="yuan", ge=0, le=1_000_000,
               sensitive=True),
        _recorded,
    ),
    primary_key=("household_id", "person_id", "month", "source"),
    foreign_keys=(ForeignKey("household_id", "households", "household_id"),
                  ForeignKey("person_id", "members", "person_id")),
    event="month",
    known="recorded_at",
    complete_after_months=2,
))

_add(Table(
    name="medical_claims",
    description="Medical insurance settlements (one per visit or stay).",
    source="medical insurance (医保)",
    columns=(
        Column("claim_id", "str", "Claim identifier."),
        Column("household_id", "str", "Household."),
        Column("person_id", "str", "Patient."),
        Column("admission_date", "date", "Admission (or visit) date."),
        Column("discharge_date", "date", "Discharge date (equal to admission for outpatient visits)."),
        Column("diagnosis_group", "str", "Diagnosis group.", allowed=DIAGNOSIS_GROUPS, sensitive=True),
        Column("serious_illness", "bool", "Diagnosis on the serious-illness list (大病).", sensitive=True),
        Column("inpatient", "bool", "Inpatient stay (住院)."),
        Column("total_cost", "float", "Total cost.", unit="yuan", ge=0, le=5_000_000, sensitive=True),
        Column("insurance_paid", "float", "Paid by basic and serious-illness insurance.", unit="yuan", ge=0,
               sensitive=True),
        Column("assistance_paid", "float", "Paid by medical assistance (医疗救助).", unit="yuan", ge=0,
               sensitive=True),
        Column("out_of_pocket", "float", "Paid by the family.", unit="yuan", ge=0, sensitive=True),
        _recorded,
    ),
    primary_key=("claim_id",),
    foreign_keys=(ForeignKey("household_id", "households", "household_id"),
                  ForeignKey("person_id", "members", "person_id")),
    event="discharge_date",
    known="recorded_at",
    rules=(NotBefore("discharge_date", "admission_date"),
           Balance("out_of_pocket", "total_cost", ("insurance_paid", "assistance_paid"), tolerance=1.0)),
))

_add(Table(
    name="disasters",
    description="Natural disasters by affected region (a county, township or village code).",
    source="emergency management (应急管理)",
    columns=(
        Column("disaster_id", "str", "Disaster identifier."),
        Column("region_code", "str", "12-digit code of the affected area; trailing zeros cover a whole "
               "county or township.", pattern=REGION_CODE),
        Column("disaster_type", "str", "Type.", allowed=DISASTER_TYPES),
        Column("start_date", "date", "First day."),
        Column("end_date", "date", "Last day."),
        Column("severity", "int", "Severity level (1 light to 4 catastrophic).", ge=1, le=4),
        _recorded,
    ),
    primary_key=("disaster_id",),
    foreign_keys=(ForeignKey("region_code", "regions", "region_code", area=True),),
    event="start_date",
    known="recorded_at",
    rules=(NotBefore("end_date", "start_date"),),
))

_add(Table(
    name="disaster_losses",
    description="Household losses assessed after a disaster.",
    source="emergency management (应急管理), agriculture (农业农村)",
    columns=(
        Column("loss_id", "str", "Loss record identifier."),
        Column("disaster_id", "str", "Disaster."),
        Column("household_id", "str", "Household."),
        Column("assessed_date", "date", "Date the loss was assessed."),
        Column("crop_loss", "float", "Value of crops lost.", unit="yuan", ge=0, le=5_000_000),
        Column("housing_damage", "str", "Damage to the house.", allowed=HOUSING_DAMAGE),
        Column("amount", "float", "Total assessed loss.", unit="yuan", ge=0, le=10_000_000),
        _recorded,
    ),
    primary_key=("loss_id",),
    foreign_keys=(ForeignKey("disaster_id", "disasters", "disaster_id"),
                  ForeignKey("household_id", "households", "household_id")),
    event="assessed_date",
    known="recorded_at",
))

_add(Table(
    name="employment_events",
    description="Employment changes: job start and loss (with unemployment-insurance coverage), migrant "
                "workers leaving and returning.",
    source="human resources and social security (人社)",
    columns=(
        Column("event_id", "str", "Event identifier."),
        Column("household_id", "str", "Household."),
        Column("person_id", "str", "Member."),
        Column("event_date", "date", "Date of the event."),
        Column("event_type", "str", "Event.", allowed=EMPLOYMENT_EVENTS),
        Column("unemployment_insured", "bool", "Covered by unemployment insurance (job_loss only).",
               nullable=True),
        _recorded,
    ),
    primary_key=("event_id",),
    foreign_keys=(ForeignKey("household_id", "households", "household_id"),
                  ForeignKey("person_id", "members", "person_id")),
    event="event_date",
    known="recorded_at",
))

_add(Table(
    name="assistance",
    description="Assistance received: recurring programmes (monthly amount) and one-off payments (total).",
    source="civil affairs (民政), medical insurance, education, housing",
    columns=(
        Column("assistance_id", "str", "Record identifier."),
        Column("household_id", "str", "Household."),
        Column("person_id", "str", "Member, for individual enrolment (单人户, 特困).", required=False,
               nullable=True),
        Column("programme", "str", "Programme.", allowed=PROGRAMMES),
        Column("start_date", "date", "Start (or payment date for one-off help)."),
        Column("end_date", "date", "End; empty while ongoing.", nullable=True),
        Column("amount", "float", "Monthly amount for recurring programmes, total for one-off help.",
               unit="yuan", ge=0, le=1_000_000, sensitive=True),
        _recorded,
    ),
    primary_key=("assistance_id",),
    foreign_keys=(ForeignKey("household_id", "households", "household_id"),
                  ForeignKey("person_id", "members", "person_id")),
    event="start_date",
    known="recorded_at",
    rules=(NotBefore("end_date", "start_date"),),
))

_add(Table(
    name="assets",
    description="Household assets as reported or checked (家庭经济状况核对).",
    source="banks, natural resources (自然资源), public security (vehicles), market regulation (市场监管)",
    columns=(
        Column("household_id", "str", "Household."),
        Column("reported_date", "date", "Date of the report or check."),
        Column("deposits", "float", "Bank deposits and financial assets.", unit="yuan", ge=0, le=100_000_000,
               sensitive=True),
        Column("vehicles", "int", "Motor vehicles owned (excluding farm machinery).", ge=0, le=50),
        Column("houses", "int", "Houses owned.", ge=0, le=50),
        Column("registered_business", "bool", "A member has a registered business."),
        _recorded,
    ),
    primary_key=("household_id", "reported_date"),
    foreign_keys=(ForeignKey("household_id", "households", "household_id"),),
    event="reported_date",
    known="recorded_at",
))

TIME_VARYING = tuple(name for name, t in TABLES.items() if t.known is not None)
