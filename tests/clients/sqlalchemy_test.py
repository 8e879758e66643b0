"""SQLAlchemy 2 (psycopg dialect) against tempora: metadata.create_all in a
transaction, table reflection, and the ORM (insert, query, update, delete)
on a hypertable. Run by crates/server/tests/drivers.rs with TEMPORA_PORT set."""

import datetime
import os
from typing import Optional

from sqlalchemy import (
    BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table, create_engine, func,
    inspect, select, text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

URL = f"postgresql+psycopg://postgres@127.0.0.1:{os.environ['TEMPORA_PORT']}/postgres"
UTC = datetime.timezone.utc


def check(condition, message):
    if not condition:
        raise AssertionError(message)


class Base(DeclarativeBase):
    pass


class Reading(Base):
    __tablename__ = "readings"
    well_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    pressure: Mapped[Optional[float]] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), default="ok")


engine = create_engine(URL)

# create_all runs in one transaction block, with the hypertable call.
with engine.begin() as conn:
    Base.metadata.create_all(conn)
    conn.execute(text("SELECT create_hypertable('readings', 'timestamp', chunk_time_interval => interval '1 day')"))

# Reflection reads pg_catalog: columns, types, keys, indexes.
reflected = Table("readings", MetaData(), autoload_with=engine)
columns = {c.name: (type(c.type).__name__, c.nullable) for c in reflected.columns}
check(columns == {
    "well_id": ("INTEGER", False),
    "timestamp": ("TIMESTAMP", False),
    "pressure": ("DOUBLE_PRECISION", True),
    "status": ("VARCHAR", False),
}, f"reflected columns {columns}")
check(reflected.c.status.type.length == 20, "varchar length")
check(reflected.c.timestamp.type.timezone, "timestamptz")
inspector = inspect(engine)
check("readings" in inspector.get_table_names(), "table names")
check(inspector.get_pk_constraint("readings")["constrained_columns"] == ["well_id", "timestamp"], "primary key")

with engine.begin() as conn:
    conn.execute(text("CREATE INDEX readings_well_time ON readings (well_id, timestamp DESC)"))
indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("readings")}
check(indexes == {"readings_well_time": ["well_id", "timestamp"]}, f"indexes {indexes}")

# The ORM.
start = datetime.datetime(2024, 5, 1, tzinfo=UTC)
with Session(engine) as session:
    session.add_all(
        Reading(well_id=w, timestamp=start + datetime.timedelta(minutes=m), pressure=100.0 + w + m / 10)
        for w in range(3)
        for m in range(60)
    )
    session.commit()

with Session(engine) as session:
    count = session.scalar(select(func.count()).select_from(Reading).where(Reading.well_id == 1))
    check(count == 60, f"count {count}")
    latest = session.scalars(
        select(Reading).where(Reading.well_id == 2).order_by(Reading.timestamp.desc()).limit(1)
    ).one()
    check(latest.timestamp == start + datetime.timedelta(minutes=59), f"latest {latest.timestamp}")
    check(latest.status == "ok", "column default")
    latest.status = "alarm"
    session.commit()

with Session(engine) as session:
    check(session.scalar(select(func.count()).where(Reading.status == "alarm")) == 1, "update")
    session.query(Reading).filter(Reading.well_id == 0).delete()
    session.commit()
    check(session.scalar(select(func.count()).select_from(Reading)) == 120, "delete")
    hourly = session.execute(
        text("SELECT time_bucket('1 hour', timestamp) AS hour, well_id, avg(pressure) AS p "
             "FROM readings GROUP BY 1, 2 ORDER BY 2")
    ).all()
    check([(r.hour, r.well_id) for r in hourly] == [(start, 1), (start, 2)], f"hourly {hourly}")

# A failed transaction rolls back everything, DDL included.
try:
    with engine.begin() as conn:
        Table("scratch", MetaData(), Column("id", BigInteger, primary_key=True)).create(conn)
        conn.execute(text("INSERT INTO scratch VALUES (1), (1)"))
except Exception:
    pass
check("scratch" not in inspect(engine).get_table_names(), "rolled back create")

print("sqlalchemy: ok")
