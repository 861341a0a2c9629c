"""Casework and pages: case fields on alerts, the case timeline, household profiles, sign-in sessions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Columns are only added (plain ``ALTER TABLE ... ADD COLUMN``, nullable): rebuilding ``alerts`` on SQLite
would cascade through its foreign keys. Self-contained on purpose: it does not import the ORM.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("alerts", sa.Column("assignee_id", sa.Integer(), nullable=True))
    op.add_column("alerts", sa.Column("stage_started_at", TIMESTAMP, nullable=True))
    op.add_column("alerts", sa.Column("verification_outcome", sa.String(24), nullable=True))
    op.add_column("alerts", sa.Column("verified_at", TIMESTAMP, nullable=True))
    op.add_column("alerts", sa.Column("proposal", JSON, nullable=True))
    op.add_column("alerts", sa.Column("close_reason", sa.String(20), nullable=True))
    op.add_column("alerts", sa.Column("closed_at", TIMESTAMP, nullable=True))
    op.create_index(op.f("ix_alerts_assignee_id"), "alerts", ["assignee_id"])
    op.add_column("users", sa.Column("password_hash", sa.String(200), nullable=True))

    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_case_events_alert_id_alerts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_case_events_user_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index(op.f("ix_case_events_alert_id"), "case_events", ["alert_id"])
    op.create_index(op.f("ix_case_events_household_id"), "case_events", ["household_id"])
    op.create_table(
        "household_profiles",
        sa.Column("household_id", sa.String(64), nullable=False),
        sa.Column("village_code", sa.String(12), nullable=False),
        sa.Column("village_name", sa.String(100), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("summary", JSON, nullable=False),
        sa.Column("identities", JSON, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_household_profiles")),
    )
    op.create_index(op.f("ix_household_profiles_village_code"), "household_profiles", ["village_code"])
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_sessions_token_hash")),
    )
    op.create_index(op.f("ix_web_sessions_user_id"), "web_sessions", ["user_id"])


def downgrade() -> None:
    op.drop_table("web_sessions")
    op.drop_table("household_profiles")
    op.drop_table("case_events")
    op.drop_column("users", "password_hash")
    op.drop_index(op.f("ix_alerts_assignee_id"), table_name="alerts")
    for column in ("closed_at", "close_reason", "proposal", "verified_at", "verification_outcome",
                   "stage_started_at", "assignee_id"):
        op.drop_column("alerts", column)
