"""Initial schema: scoring runs, household scores, alerts (cases), users, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-29

Self-contained on purpose: a migration must not import the ORM, which keeps changing after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
OPEN = sa.text("status NOT IN ('closed', 'superseded')")


def upgrade() -> None:
    op.create_table(
        "scoring_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(40), nullable=False),
        sa.Column("feature_version", sa.String(40), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("n_scored", sa.Integer(), nullable=False),
        sa.Column("n_alerts", sa.Integer(), nullable=False),
        sa.Column("n_triggered", sa.Integer(), nullable=False),
        sa.Column("n_open_case", sa.Integer(), nullable=False),
        sa.Column("n_capped", sa.Integer(), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.CheckConstraint("source IN ('batch', 'api')", name=op.f("ck_scoring_runs_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scoring_runs")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("region_codes", JSON, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("role IN ('platform', 'worker', 'supervisor', 'modeler', 'admin')",
                           name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_users_token_hash")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("township_code", sa.String(9), nullable=False),
        sa.Column("county_code", sa.String(6), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("model_version", sa.String(40), nullable=False),
        sa.Column("risk", sa.Double(), nullable=False),
        sa.Column("raw_score", sa.Double(), nullable=False),
        sa.Column("base_value", sa.Double(), nullable=False),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("triggered", sa.Boolean(), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("triggers", JSON, nullable=False),
        sa.Column("recommendations", JSON, nullable=False),
        sa.Column("contributions", JSON, nullable=False),
        sa.Column("features", JSON, nullable=False),
        sa.Column("status", sa.String(20), server_default="new", nullable=False),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("tier IN ('none', 'yellow', 'orange', 'red')", name=op.f("ck_alerts_tier")),
        sa.ForeignKeyConstraint(["run_id"], ["scoring_runs.id"], name=op.f("fk_alerts_run_id_scoring_runs"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["superseded_by"], ["alerts.id"], name=op.f("fk_alerts_superseded_by_alerts"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("run_id", "household_id", name=op.f("uq_alerts_run_id_household_id")),
    )
    op.create_index(op.f("ix_alerts_run_id"), "alerts", ["run_id"])
    op.create_index(op.f("ix_alerts_village_code"), "alerts", ["village_code"])
    op.create_index(op.f("ix_alerts_risk"), "alerts", ["risk"])
    op.create_index(op.f("ix_alerts_household_id_created_at"), "alerts", ["household_id", "created_at"])
    op.create_index("ix_alerts_open_household", "alerts", ["household_id"], unique=True,
                    sqlite_where=OPEN, postgresql_where=OPEN)
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request_path", sa.String(500), nullable=True),
        sa.Column("detail", JSON, nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_audit_log_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_index(op.f("ix_audit_log_household_id"), "audit_log", ["household_id"])
    op.create_table(
        "household_scores",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("risk", sa.Double(), nullable=False),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["scoring_runs.id"],
                                name=op.f("fk_household_scores_run_id_scoring_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "household_id", name=op.f("pk_household_scores")),
    )
    op.create_index(op.f("ix_household_scores_household_id_run_id"), "household_scores",
                    ["household_id", "run_id"])


def downgrade() -> None:
    op.drop_table("household_scores")
    op.drop_table("audit_log")
    op.drop_table("alerts")
    op.drop_table("users")
    op.drop_table("scoring_runs")
