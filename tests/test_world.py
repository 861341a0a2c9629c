"""The synthetic world (doudi/world.py): determinism, the data contract, and the processes behind it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from doudi.cli import app
from doudi.contract import TABLES
from doudi.io import read_raw, typed_table, write_world
from doudi.labels import build_labels, cohort
from doudi.pseudonym import id_birth_dates, id_sexes, is_valid_id_number
from doudi.validate import check_world
from doudi.world import COUNTIES, FAULTS, faults_manifest_text, generate_world, inject_faults

KEY = "k" * 32


@pytest.fixture(scope="module")
def small() -> dict[str, pd.DataFrame]:
    return generate_world(300, 24, 11)


@pytest.fixture(scope="module")
def mid() -> dict[str, pd.DataFrame]:
    """Big enough for rates: 6,000 households over 36 months (a few seconds)."""
    return generate_world(6000, 36, 7)


def month_start(month: pd.Series) -> pd.Series:
    return pd.to_datetime(month.astype(str), format="%Y-%m")


# --- determinism and the contract ---------------------------------------------------------------------------


def test_same_seed_same_world_other_seed_other_world(small: dict[str, pd.DataFrame]) -> None:
    again = generate_world(300, 24, 11)
    for name in TABLES:
        pd.testing.assert_frame_equal(again[name], small[name], obj=name)
    other = generate_world(300, 24, 12)
    assert not other["income"].equals(small["income"])
    assert not other["members"]["birth_date"].equals(small["members"]["birth_date"])


def test_every_table_follows_the_contract(small: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    assert list(small) == list(TABLES)
    for name, table in TABLES.items():
        frame = small[name]
        assert list(frame.columns) == table.column_names, name
        assert len(frame) > 0, name
        typed, failures = typed_table(table, frame)
        assert failures == [], name
        # Already in the types load_world gives (id_hash / id_last4 are filled on load).
        pd.testing.assert_frame_equal(typed, frame, check_dtype=True, obj=name)
    write_world(small, tmp_path / "parquet")
    assert check_world(read_raw(tmp_path / "parquet")) == []
    write_world(small, tmp_path / "csv", fmt="csv")
    assert check_world(read_raw(tmp_path / "csv")) == []


def test_records_are_known_only_after_they_happen(small: dict[str, pd.DataFrame]) -> None:
    for name in TABLES:
        table = TABLES[name]
        if table.known is None or table.known_in_advance:
            continue
        frame = small[name]
        event = frame[table.event]
        event = month_start(event) if table.column(table.event).dtype == "month" else event
        assert (frame[table.known] >= event).all(), name
    standards = small["standards"]
    assert (standards["recorded_at"] < month_start(standards["month"])).all()  # published in advance


def test_resident_ids_are_valid_unique_and_match_the_person(small: dict[str, pd.DataFrame]) -> None:
    members = small["members"]
    ids = members["id_number"]
    assert is_valid_id_number(ids).all()
    assert ids.is_unique
    assert (id_birth_dates(ids) == members["birth_date"]).all()
    assert (id_sexes(ids) == members["sex"]).all()
    counties = members["household_id"].map(small["households"].set_index("household_id")["village_code"])
    assert (ids.str.slice(0, 6) == counties.str.slice(0, 6)).all()


def test_geography_households_and_members(small: dict[str, pd.DataFrame]) -> None:
    regions, homes, members = small["regions"], small["households"], small["members"]
    assert regions["region_code"].str.fullmatch(r"\d{12}").all()
    assert set(regions["region_code"].str.slice(0, 6)) == {c.code for c in COUNTIES}
    assert set(regions["urban_rural"]) == {"urban", "rural"}
    assert homes["village_code"].isin(regions["region_code"]).all()
    heads = members[members["relation"] == "head"]
    assert heads["household_id"].is_unique and set(heads["household_id"]) == set(homes["household_id"])
    lifted = homes.dropna(subset=["lifted_out_year"])
    assert lifted["lifted_out_year"].between(2016, 2020).all() and (lifted["urban_rural"] == "rural").all()
    assert 0 < len(lifted) < len(homes)
    programmes = set(small["assistance"]["programme"])
    assert {"dibao", "edge", "tekun", "temporary"} <= programmes
    # Some households are already on dibao when the simulation starts.
    assistance = small["assistance"]
    assert ((assistance["programme"] == "dibao") & (assistance["start_date"] < "2023-01-01")).any()


def test_standards_reset_each_january(small: dict[str, pd.DataFrame]) -> None:
    standards = small["standards"].assign(year=lambda f: f["month"].str.slice(0, 4))
    assert len(standards) == len(COUNTIES) * 24 * 2
    per_year = standards.groupby(["county_code", "urban_rural", "year"])
    assert (per_year["dibao_standard"].nunique() == 1).all()
    assert (per_year["monitoring_line"].nunique() == 1).all()
    yearly = per_year[["dibao_standard", "monitoring_line"]].first().unstack("year")
    assert (yearly["dibao_standard"]["2024"] > yearly["dibao_standard"]["2023"]).all()
    assert (yearly["monitoring_line"]["2024"] > yearly["monitoring_line"]["2023"]).all()
    urban = standards[standards["urban_rural"] == "urban"].set_index(["county_code", "month"])
    rural = standards[standards["urban_rural"] == "rural"].set_index(["county_code", "month"])
    assert (urban["dibao_standard"] > rural["dibao_standard"]).all()


def test_reporting_lags(mid: dict[str, pd.DataFrame]) -> None:
    income = mid["income"]
    month_end = month_start(income["month"]) + pd.offsets.MonthBegin(1)
    lag = (income["recorded_at"] - month_end).dt.days
    assert (lag >= 0).all()
    assert 0.9 < (lag <= 60).mean() < 1.0  # mostly within two months of the month's end, a few very late
    claims = mid["medical_claims"]
    claim_lag = (claims["recorded_at"] - claims["discharge_date"]).dt.days
    assert claim_lag.median() > 3 and (claim_lag > 60).any()
    losses = mid["disaster_losses"].merge(mid["disasters"][["disaster_id", "end_date"]], on="disaster_id")
    assert (losses["assessed_date"] > losses["end_date"]).all()  # assessed weeks after the disaster


# --- the processes ------------------------------------------------------------------------------------------


def test_base_rate_is_in_range_and_differs_by_county(mid: dict[str, pd.DataFrame]) -> None:
    county = mid["households"].set_index("household_id")["village_code"].str.slice(0, 6)
    frames = [build_labels(mid, pd.Timestamp(d)) for d in ("2024-03-01", "2024-09-01", "2025-03-01")]
    for labels in frames:
        assert 0.03 <= labels["label"].mean() <= 0.15
    pooled = pd.concat(frames)
    by_county = pooled.groupby(county.reindex(pooled.index).to_numpy())["label"].mean()
    assert len(by_county) == len(COUNTIES)
    assert by_county.max() / by_county.min() > 1.25
    assert set(pooled["reason"].dropna()) >= {"income_below_line", "dibao", "temporary_assistance"}


def test_serious_illness_foreshadows_hardship(mid: dict[str, pd.DataFrame]) -> None:
    as_of = pd.Timestamp("2024-09-01")
    labels = build_labels(mid, as_of)
    claims = mid["medical_claims"]
    known = claims[claims["serious_illness"] & (claims["recorded_at"] < as_of)
                   & (claims["discharge_date"] >= as_of - pd.DateOffset(months=3))]
    ill = labels.index.isin(known["household_id"])
    assert ill.sum() >= 30
    assert labels.loc[ill, "label"].mean() > 3 * labels.loc[~ill, "label"].mean()


def test_disasters_cut_the_coming_harvest(mid: dict[str, pd.DataFrame]) -> None:
    # Farm income in the 4 months after a disaster, relative to the household's own monthly average,
    # is lower for households that lost crops than for the rest of their county in the same months.
    income = mid["income"][mid["income"]["source"] == "farming"]
    farm = income.pivot_table(index="household_id", columns="month", values="amount", aggfunc="sum",
                              fill_value=0.0)
    average = farm.mean(axis=1)
    losses = mid["disaster_losses"].merge(mid["disasters"], on="disaster_id")
    losses = losses[losses["crop_loss"] > 0]
    county = mid["households"].set_index("household_id")["village_code"].str.slice(0, 6)
    ratios_hit, ratios_rest = [], []
    for (start, code), group in losses.groupby([losses["start_date"].dt.to_period("M"), losses["region_code"]
                                                .str.slice(0, 6)]):
        months = [str(start + i) for i in range(1, 5) if str(start + i) in farm.columns]
        if not months:
            continue
        after = farm[months].mean(axis=1) / average.replace(0, np.nan)
        in_county = county.reindex(farm.index).to_numpy() == code
        hit = farm.index.isin(group["household_id"])
        ratios_hit.append(after[hit].mean())
        ratios_rest.append(after[in_county & ~hit].mean())
    assert len(ratios_hit) >= 5
    assert np.nanmean(ratios_hit) < 0.85 * np.nanmean(ratios_rest)


def test_a_job_loss_stops_the_wage(mid: dict[str, pd.DataFrame]) -> None:
    events = mid["employment_events"]
    losses = events[(events["event_type"] == "job_loss") & (events["event_date"] >= "2023-06-01")
                    & (events["event_date"] < "2025-06-01")]
    wages = mid["income"][mid["income"]["source"] == "wage"].copy()
    wages["m"] = month_start(wages["month"]).dt.to_period("M")
    loss_month = losses.assign(m=losses["event_date"].dt.to_period("M"))[["person_id", "m"]]
    joined = wages.merge(loss_month, on="person_id", suffixes=("", "_loss"))
    offset = (joined["m"] - joined["m_loss"]).apply(lambda d: d.n)
    before = joined[offset.between(-3, -1)].groupby("person_id")["amount"].mean()
    after = joined[offset == 1].groupby("person_id")["amount"].sum().reindex(before.index, fill_value=0.0)
    assert len(before) >= 50
    assert after.sum() < 0.3 * before.sum()


def test_temporary_assistance_follows_shocks(mid: dict[str, pd.DataFrame]) -> None:
    aid = mid["assistance"][mid["assistance"]["programme"] == "temporary"]
    claims = mid["medical_claims"]
    events = mid["employment_events"]
    losses = mid["disaster_losses"]
    shocks = pd.concat([
        claims.loc[claims["out_of_pocket"] > 8000, ["household_id", "discharge_date"]]
        .set_axis(["h", "d"], axis=1),
        events.loc[(events["event_type"] == "job_loss") & ~events["unemployment_insured"].fillna(False),
                   ["household_id", "event_date"]].set_axis(["h", "d"], axis=1),
        losses.loc[losses["housing_damage"].isin(["severe", "collapsed"]),
                   ["household_id", "assessed_date"]].set_axis(["h", "d"], axis=1),
    ])
    joined = aid[["household_id", "start_date"]].merge(shocks, left_on="household_id", right_on="h")
    # Assessed losses are dated weeks after the disaster that triggered the help.
    recent = joined[(joined["d"] <= joined["start_date"] + pd.Timedelta(days=60))
                    & (joined["d"] >= joined["start_date"] - pd.DateOffset(months=3))]
    share = aid["household_id"].isin(recent["household_id"]).mean()
    assert share > 0.5


def test_cohort_excludes_dibao_and_below_line(mid: dict[str, pd.DataFrame]) -> None:
    as_of = pd.Timestamp("2024-06-01")
    members = cohort(mid, as_of)
    assert 0.6 * len(mid["households"]) < len(members) < 0.95 * len(mid["households"])
    assistance = mid["assistance"]
    on_dibao = assistance[(assistance["programme"] == "dibao") & (assistance["recorded_at"] < as_of)
                          & (assistance["start_date"] < as_of)
                          & (assistance["end_date"].isna() | (assistance["end_date"] >= as_of))]
    assert not set(on_dibao["household_id"]) & set(members)


# --- messy worlds -------------------------------------------------------------------------------------------


def test_faults_manifest(small: dict[str, pd.DataFrame]) -> None:
    messy, faults = inject_faults(small, seed=11)
    assert list(faults.columns) == ["table", "row", "column", "fault", "rule", "detail"]
    assert set(faults["fault"]) == set(FAULTS)
    for fault, (table, column, rule, _) in FAULTS.items():
        rows = faults[faults["fault"] == fault]
        assert (rows["table"] == table).all() and (rows["column"] == column).all()
        assert rows["rule"].isna().all() if rule is None else (rows["rule"] == rule).all()
    placed = faults.dropna(subset=["row"])
    assert not placed.duplicated(["table", "row"]).any()  # one fault per row
    for name, group in placed.groupby("table"):
        assert group["row"].between(1, len(messy[name])).all()
    # Removed months are gone; late rows are late; duplicates repeat the row above.
    income = messy["income"]
    gone = faults[faults["fault"] == "missing_month"]["detail"].str.extract(r"month (\S+) (\S+)$")
    keys = income["household_id"].astype(str) + " " + income["month"].astype(str)
    assert not keys.isin(gone[0] + " " + gone[1]).any()
    late = income.iloc[faults.loc[faults["fault"] == "late_record", "row"].astype(int) - 1]
    assert ((late["recorded_at"] - month_start(late["month"])).dt.days > 180).all()
    copies = faults.loc[faults["fault"] == "duplicate_row", "row"].astype(int).to_numpy()
    pd.testing.assert_frame_equal(income.iloc[copies - 1].reset_index(drop=True),
                                  income.iloc[copies - 2].reset_index(drop=True))
    # The text written as _faults.json.
    text = json.loads(faults_manifest_text(faults, seed=11))
    assert text["seed"] == 11 and len(text["faults"]) == len(faults)
    assert {None, "duplicate_key"} <= {f["rule"] for f in text["faults"]}


def test_messy_flag_is_the_same_as_injecting(small: dict[str, pd.DataFrame]) -> None:
    messy = generate_world(300, 24, 11, messy=True)
    expected, _ = inject_faults(small, seed=11)
    for name in TABLES:
        pd.testing.assert_frame_equal(messy[name], expected[name], obj=name)


# --- the command line ---------------------------------------------------------------------------------------


def test_cli_generate_and_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOUDI_ID_HMAC_KEY", KEY)
    runner = CliRunner()
    out = tmp_path / "world"
    result = runner.invoke(app, ["generate", "--households", "200", "--months", "14", "--seed", "3", "--out",
                                 str(out), "--messy", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert (out / "income.csv").exists() and (out / "_faults.json").exists()
    assert "Injected" in result.output
    manifest = json.loads((out / "_faults.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 3 and manifest["faults"]
    # A messy world does not load: clear message, exit code 1, no traceback.
    result = runner.invoke(app, ["labels", str(out), "--as-of", "2023-06-01"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    # A clean world over the same folder drops the stale manifest.
    result = runner.invoke(app, ["generate", "--households", "200", "--months", "14", "--seed", "3", "--out",
                                 str(out)])
    assert result.exit_code == 0, result.output
    assert not (out / "_faults.json").exists()
    labels_file = tmp_path / "labels.parquet"
    result = runner.invoke(app, ["labels", str(out), "--as-of", "2023-06-01", "--out", str(labels_file)])
    assert result.exit_code == 0, result.output
    assert "base rate" in result.output and "Per county" in result.output
    written = pd.read_parquet(labels_file)
    assert list(written.columns) == ["household_id", "as_of", "label", "event_month", "reason"]
    result = runner.invoke(app, ["labels", str(out), "--as-of", "2023-12-01"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "need income up to 2024-05" in " ".join(result.output.split())  # rich wraps long lines


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--format", "xlsx"])
    assert result.exit_code == 2 and "parquet or csv" in result.output
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--start-month", "2023-13"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["generate", "--out", str(tmp_path), "--households", "0"])
    assert result.exit_code == 2
