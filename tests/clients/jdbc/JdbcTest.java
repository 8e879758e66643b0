// The PostgreSQL JDBC driver against tempora: prepared statements and
// batches, transactions, the types it maps, DatabaseMetaData (which reads
// pg_catalog), and SQLSTATEs. Run by crates/server/tests/drivers.rs with
// TEMPORA_PORT set.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Timestamp;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

public class JdbcTest {
    static void check(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://127.0.0.1:" + System.getenv("TEMPORA_PORT") + "/postgres";
        try (Connection conn = DriverManager.getConnection(url, "postgres", "")) {
            try (Statement st = conn.createStatement()) {
                st.execute("CREATE TABLE pump_readings (well_id integer NOT NULL, ts timestamptz NOT NULL, "
                        + "pressure double precision, flow numeric(10,3), sensor uuid, PRIMARY KEY (well_id, ts))");
                st.execute("SELECT create_hypertable('pump_readings', 'ts', chunk_time_interval => interval '7 days')");
            }

            Instant start = Instant.parse("2024-06-01T00:00:00Z");
            UUID sensor = UUID.randomUUID();
            conn.setAutoCommit(false);
            try (PreparedStatement insert = conn.prepareStatement(
                    "INSERT INTO pump_readings VALUES (?, ?, ?, ?, ?)")) {
                for (int i = 0; i < 500; i++) {
                    insert.setInt(1, i % 5);
                    insert.setTimestamp(2, Timestamp.from(start.plusSeconds(i)));
                    insert.setDouble(3, 50.0 + i / 10.0);
                    insert.setBigDecimal(4, new BigDecimal("1.250").add(BigDecimal.valueOf(i, 3)));
                    insert.setObject(5, sensor);
                    insert.addBatch();
                }
                int[] counts = insert.executeBatch();
                check(counts.length == 500, "batch size " + counts.length);
            }
            conn.commit();

            // A rolled-back transaction leaves nothing.
            try (Statement st = conn.createStatement()) {
                st.executeUpdate("DELETE FROM pump_readings WHERE well_id = 0");
            }
            conn.rollback();
            conn.setAutoCommit(true);

            try (PreparedStatement query = conn.prepareStatement(
                    "SELECT well_id, ts, pressure, flow, sensor FROM pump_readings WHERE well_id = ? ORDER BY ts DESC LIMIT 1")) {
                for (int run = 0; run < 6; run++) {
                    // After five runs the driver switches to a named server-side statement.
                    query.setInt(1, 3);
                    try (ResultSet rs = query.executeQuery()) {
                        check(rs.next(), "a row");
                        check(rs.getInt(1) == 3, "well");
                        check(rs.getTimestamp(2).toInstant().equals(start.plusSeconds(498)), "ts " + rs.getTimestamp(2));
                        check(rs.getDouble(3) == 99.8, "pressure " + rs.getDouble(3));
                        check(rs.getBigDecimal(4).compareTo(new BigDecimal("1.748")) == 0, "flow " + rs.getBigDecimal(4));
                        check(sensor.equals(rs.getObject(5)), "uuid");
                        ResultSetMetaData md = rs.getMetaData();
                        check(md.getColumnTypeName(2).equals("timestamptz"), "type name " + md.getColumnTypeName(2));
                        check(md.getColumnName(3).equals("pressure"), "column name");
                    }
                }
            }
            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT count(*) FROM pump_readings")) {
                rs.next();
                check(rs.getLong(1) == 500, "count " + rs.getLong(1));
            }

            // DatabaseMetaData reads pg_catalog.
            DatabaseMetaData meta = conn.getMetaData();
            check(meta.getDatabaseProductName().equals("PostgreSQL"), "product");
            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "public", "%", new String[] {"TABLE"})) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_NAME"));
                }
            }
            check(tables.contains("pump_readings"), "tables " + tables);
            List<String> columns = new ArrayList<>();
            try (ResultSet rs = meta.getColumns(null, "public", "pump_readings", "%")) {
                while (rs.next()) {
                    columns.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME"));
                }
            }
            check(columns.equals(List.of("well_id:int4", "ts:timestamptz", "pressure:float8", "flow:numeric", "sensor:uuid")),
                    "columns " + columns);
            List<String> keys = new ArrayList<>();
            try (ResultSet rs = meta.getPrimaryKeys(null, "public", "pump_readings")) {
                while (rs.next()) {
                    keys.add(rs.getString("COLUMN_NAME"));
                }
            }
            check(keys.equals(List.of("well_id", "ts")), "primary key " + keys);

            try (Statement st = conn.createStatement()) {
                st.execute("INSERT INTO pump_readings (well_id, ts) VALUES (1, '2024-06-01T00:00:01Z')");
                throw new AssertionError("duplicate accepted");
            } catch (SQLException e) {
                check("23505".equals(e.getSQLState()), "sqlstate " + e.getSQLState());
            }
        }
        System.out.println("jdbc: ok");
    }
}
