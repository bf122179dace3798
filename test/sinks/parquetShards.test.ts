// The events shard as Parquet: which columns carry a dictionary (text that repeats) and which do
// not (fixed-width columns, and the origin, unique to each row), read from the file's own
// metadata by DuckDB; the rows read back as they were pushed.
import { strict as assert } from 'node:assert';
import * as path from 'node:path';
import { EventBatch } from '../../sinks/eventShards';
import { writeParquetAtomic } from '../../sinks/parquet';
import { emptyCanonicalEvent } from '../../schemas/canonicalEvent';
import { lit, sql, tempDir } from '../helpers';

describe('events shard encoding', () => {
  it('keeps dictionaries for repeating text only; the origin and fixed-width columns are written plain; rows read back', async () => {
    const batch = new EventBatch();
    const units = ['mg/dL', 'mmol/L', null];
    for (let i = 0; i < 5000; i++) {
      const e = emptyCanonicalEvent();
      Object.assign(e, {
        personId: 1 + (i % 37), timeMs: 1_600_000_000_000 + i * 60_000, table: i % 2 ? 'measurement' : 'condition', omopTable: i % 2 ? 'measurement' : 'condition_occurrence',
        conceptId: 3_000_000 + (i % 11), sourceConceptId: i % 5, decile: i % 2 ? i % 10 : -1, value: i % 2 ? i / 7 : null, unit: i % 2 ? units[i % 3] : null,
        visitId: i % 4 ? 900 + (i % 13) : null, rowId: 10_000 + i, row: i + 1,
      });
      batch.push(e);
    }
    const file = path.join(tempDir('events-shard'), 'events.parquet');
    writeParquetAtomic(file, batch.toTable());
    const columns = await sql<{ column: string; encodings: string }>(`SELECT path_in_schema AS column, string_agg(DISTINCT encodings, ',') AS encodings
      FROM parquet_metadata(${lit(file)}) GROUP BY 1 ORDER BY 1`);
    const dictionary = new Set(columns.filter((c) => /DICTIONARY/.test(c.encodings)).map((c) => c.column));
    assert.equal(columns.length, 11, JSON.stringify(columns));
    assert.deepEqual([...dictionary].sort(), ['table', 'unit'], `dictionary-encoded columns: ${JSON.stringify(columns)}`);
    const [r] = await sql<{ n: number; origins: number; first: string; units: number }>(`SELECT CAST(count(*) AS INTEGER) AS n, CAST(count(DISTINCT origin) AS INTEGER) AS origins,
      arg_min(origin, time) FILTER (WHERE person_id = 2) AS first, CAST(count(unit) AS INTEGER) AS units FROM read_parquet(${lit(file)})`);
    assert.deepEqual(r, { n: 5000, origins: 5000, first: 'measurement:10001:2', units: 1667 });
  });
});
