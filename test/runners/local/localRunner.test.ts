import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLocal, RunSummary } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { splitOf } from '../../../transforms/splits';
import { OMOP, lit, sql, tempDir } from '../../helpers';

async function run(omop: string, name: string, extra: Partial<Parameters<typeof runLocal>[0]> = {}): Promise<RunSummary> {
  return runLocal({ omop, out: path.join(tempDir(name), 'out'), log: silentLogger, ...extra });
}

const shardsOf = (out: string, kind: string) =>
  (JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).shards as { kind: string; path: string; sha256: string; rows: number }[]).filter(
    (s) => s.kind === kind,
  );
const glob = (out: string, dir: string) => lit(path.join(out, dir, '*.parquet'));

describe('local runner on Synthea27Nj (CSV, upper-case names)', function () {
  let s: RunSummary;
  before(async () => {
    s = await run(OMOP.synthea, 'synthea');
  });

  it('reads every person and turns every clinical row into one event (checked against the input by SQL)', async () => {
    const [input] = await sql<Record<string, bigint>>(`SELECT
      (SELECT count(*) FROM read_csv(${lit(OMOP.synthea + '/PERSON.csv')})) AS persons,
      (SELECT count(*) FROM read_csv(${lit(OMOP.synthea + '/CONDITION_OCCURRENCE.csv')})) AS condition,
      (SELECT count(*) FROM read_csv(${lit(OMOP.synthea + '/DRUG_EXPOSURE.csv')})) AS drug,
      (SELECT count(*) FROM read_csv(${lit(OMOP.synthea + '/MEASUREMENT.csv')})) AS measurement,
      (SELECT count(*) FROM read_csv(${lit(OMOP.synthea + '/PROCEDURE_OCCURRENCE.csv')})) AS procedure,
      (SELECT count(*) FROM read_csv(${lit(OMOP.synthea + '/VISIT_OCCURRENCE.csv')})) AS visit,
      (SELECT count(*) FROM read_csv(${lit(OMOP.synthea + '/DEATH.csv')})) AS death`);
    assert.equal(s.persons, Number(input.persons));
    assert.equal(s.persons, 28);
    const out = await sql<{ table: string; n: bigint }>(`SELECT "table", count(*) n FROM read_parquet(${glob(s.out, 'events')}) GROUP BY 1`);
    const byTable = Object.fromEntries(out.map((r) => [r.table, Number(r.n)]));
    for (const t of ['condition', 'drug', 'measurement', 'procedure', 'visit', 'death']) assert.equal(byTable[t], Number(input[t]), t);
    assert.equal(s.rejectsTotal, 0);
  });

  it('bins exactly the measurements whose (concept, unit) group has >= 10 training values, by the decile rule', async () => {
    const deciles = JSON.parse(fs.readFileSync(path.join(s.out, 'artifacts/deciles.json'), 'utf8'));
    const persons = await sql<{ id: number }>(`SELECT person_id::DOUBLE AS id FROM read_csv(${lit(OMOP.synthea + '/PERSON.csv')})`);
    const train = persons.map((p) => p.id).filter((id) => ['pretrain_train', 'finetune_train'].includes(splitOf(id)));
    // Second implementation of fit: DuckDB's quantile_cont (linear interpolation) over training persons.
    const ref = await sql<{ concept: number; unit: string; n: number; b: number[] }>(`
      SELECT measurement_concept_id::DOUBLE AS concept, unit_source_value AS unit, count(*)::DOUBLE AS n,
             quantile_cont(value_as_number, [0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1]) AS b
      FROM read_csv(${lit(OMOP.synthea + '/MEASUREMENT.csv')})
      WHERE value_as_number IS NOT NULL AND person_id IN (${train.join(',')})
      GROUP BY ALL HAVING count(*) >= 10 ORDER BY concept, unit`);
    assert.ok(ref.length > 10);
    assert.equal(deciles.groups.length, ref.length);
    for (let i = 0; i < ref.length; i++) {
      const g = deciles.groups[i];
      assert.equal(g.concept_id, ref[i].concept);
      assert.equal(g.unit, ref[i].unit);
      assert.equal(g.count, ref[i].n);
      g.boundaries.forEach((b: number, k: number) => assert.ok(Math.abs(b - ref[i].b[k]) < 1e-9 * Math.max(1, Math.abs(b))));
    }
    // Second implementation of apply: bisect_left = number of boundaries below the value.
    const [check] = await sql<{ binned: bigint; mismatched: bigint; expected: bigint }>(`
      WITH b AS (SELECT * FROM (SELECT unnest(groups, recursive := false) AS g FROM read_json(${lit(path.join(s.out, 'artifacts/deciles.json'))}))),
      bounds AS (SELECT g.concept_id AS concept_id, g.unit AS unit, g.boundaries AS b FROM b),
      ev AS (SELECT * FROM read_parquet(${glob(s.out, 'events')}) WHERE "table" = 'measurement')
      SELECT count(e.decile) AS binned,
             count(*) FILTER (WHERE bounds.b IS NOT NULL AND e.value IS NOT NULL AND
                e.decile IS DISTINCT FROM greatest(0, least(9, len(list_filter(bounds.b, x -> x < e.value)) - 1))) AS mismatched,
             count(*) FILTER (WHERE bounds.b IS NOT NULL AND e.value IS NOT NULL) AS expected
      FROM ev e LEFT JOIN bounds ON bounds.concept_id = e.concept_id AND bounds.unit = e.unit`);
    assert.equal(Number(check.mismatched), 0);
    assert.equal(Number(check.binned), Number(check.expected));
    assert.equal(Number(check.binned), s.measurementsBinned);
    assert.ok(s.measurementsBinned > 5000, `binned ${s.measurementsBinned}`);
  });

  it('writes pretraining sequences: [CLS], gender, then each person\'s token events in time order', async () => {
    const [r] = await sql<{ persons: bigint; tokens: bigint; cls: bigint; bad_gender: bigint; unsorted: bigint }>(`
      WITH p AS (SELECT * FROM read_parquet(${glob(s.out, 'pretrain')}))
      SELECT count(DISTINCT person_id) persons, sum(len(concept_ids) - 2) tokens,
             count(*) FILTER (WHERE concept_ids[1] = -3) cls,
             count(*) FILTER (WHERE concept_ids[2] NOT IN (8507, 8532)) bad_gender,
             count(*) FILTER (WHERE list_sort(segments[3:]) <> segments[3:]) unsorted
      FROM p`);
    const [ev] = await sql<{ n: bigint; persons: bigint }>(
      `SELECT count(*) n, count(DISTINCT person_id) persons FROM read_parquet(${glob(s.out, 'events')}) WHERE domain BETWEEN 1 AND 4`,
    );
    assert.equal(Number(r.tokens), Number(ev.n), 'every token event in exactly one sequence');
    assert.equal(Number(r.persons), Number(ev.persons));
    assert.equal(Number(r.cls), Number(r.persons));
    assert.equal(Number(r.bad_gender), 0);
    assert.equal(Number(r.unsorted), 0, 'segments never decrease along a trajectory');
  });

  it('writes shards and MEDS that DuckDB reads with the expected row counts and types', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(s.out, 'manifest.json'), 'utf8'));
    for (const shard of manifest.shards) {
      const [r] = await sql<{ n: bigint }>(`SELECT count(*) n FROM read_parquet(${lit(path.join(s.out, shard.path))})`);
      assert.equal(Number(r.n), shard.rows, shard.path);
      assert.equal(fs.statSync(path.join(s.out, shard.path)).size, shard.bytes);
    }
    assert.match(manifest.artifacts.deciles.version, /^sha256:/);
    assert.match(manifest.artifacts.vocabulary.version, /^sha256:/);
    const types = await sql<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${lit(path.join(s.out, 'meds/data/*.parquet'))})`);
    const t = Object.fromEntries(types.map((r) => [r.column_name, r.column_type]));
    assert.deepEqual([t.subject_id, t.time, t.code, t.numeric_value], ['BIGINT', 'TIMESTAMP', 'VARCHAR', 'FLOAT']);
    const [meds] = await sql<{ n: bigint; deaths: bigint; births: bigint; codes: bigint; splits: bigint }>(`SELECT
      (SELECT count(*) FROM read_parquet(${lit(path.join(s.out, 'meds/data/*.parquet'))}) WHERE code NOT IN ('MEDS_BIRTH') AND code NOT LIKE 'GENDER/%') n,
      (SELECT count(*) FROM read_parquet(${lit(path.join(s.out, 'meds/data/*.parquet'))}) WHERE code = 'MEDS_DEATH') deaths,
      (SELECT count(*) FROM read_parquet(${lit(path.join(s.out, 'meds/data/*.parquet'))}) WHERE code = 'MEDS_BIRTH') births,
      (SELECT count(*) FROM read_parquet(${lit(path.join(s.out, 'meds/metadata/codes.parquet'))})) codes,
      (SELECT count(*) FROM read_parquet(${lit(path.join(s.out, 'meds/metadata/subject_splits.parquet'))}) WHERE split IN ('train', 'tuning', 'held_out')) splits`);
    // Each death is MEDS_DEATH plus its cause (Synthea27Nj's deaths all name one).
    assert.equal(Number(meds.deaths), s.eventsOut.death);
    assert.equal(Number(meds.n), s.eventsOutTotal + s.eventsOut.death);
    assert.equal(Number(meds.births), s.persons);
    assert.equal(Number(meds.splits), s.persons);
    assert.ok(Number(meds.codes) > 100);
    const dataset = JSON.parse(fs.readFileSync(path.join(s.out, 'meds/metadata/dataset.json'), 'utf8'));
    assert.equal(dataset.meds_version, '0.4.1');
  });

  it('gives byte-identical shards when run again on the same input', async () => {
    const again = await run(OMOP.synthea, 'synthea-again');
    const a = JSON.parse(fs.readFileSync(path.join(s.out, 'manifest.json'), 'utf8')).shards;
    const b = JSON.parse(fs.readFileSync(path.join(again.out, 'manifest.json'), 'utf8')).shards;
    assert.ok(a.length >= 5);
    assert.deepEqual(b, a);
  });

  it('reads the Parquet form of the same data into the same events', async () => {
    const p = await run(OMOP.syntheaParquet, 'synthea-parquet');
    const [diff] = await sql<{ a: bigint; b: bigint }>(`SELECT
      (SELECT count(*) FROM (SELECT * FROM read_parquet(${glob(s.out, 'events')}) EXCEPT ALL SELECT * FROM read_parquet(${glob(p.out, 'events')}))) a,
      (SELECT count(*) FROM (SELECT * FROM read_parquet(${glob(p.out, 'events')}) EXCEPT ALL SELECT * FROM read_parquet(${glob(s.out, 'events')}))) b`);
    assert.deepEqual([Number(diff.a), Number(diff.b)], [0, 0]);
    assert.equal(p.eventsOutTotal, s.eventsOutTotal);
    assert.deepEqual(shardsOf(p.out, 'pretrain').map((x) => x.sha256), shardsOf(s.out, 'pretrain').map((x) => x.sha256));
  });
});

describe('local runner on GiBleed (CSV and DuckDB database)', function () {
  let csv: RunSummary;
  let db: RunSummary;
  before(async () => {
    csv = await run(OMOP.gibleed, 'gibleed', { eventsPerShard: 50_000 });
    // The database is also read in several sorted person ranges: the output must not change.
    db = await run(OMOP.gibleedDuckdb, 'gibleed-db', { eventsPerShard: 50_000, rowsPerRange: 40_000 });
  });

  it('counts persons and events per table as in the input; measurements carry no value, so no decile', async () => {
    assert.equal(csv.persons, 2694);
    assert.deepEqual(
      { condition: csv.eventsOut.condition, drug: csv.eventsOut.drug, measurement: csv.eventsOut.measurement, procedure: csv.eventsOut.procedure, visit: csv.eventsOut.visit },
      { condition: 65332, drug: 67707, measurement: 44053, procedure: 37409, visit: 1037 },
    );
    assert.equal(csv.measurementsBinned, 0);
    assert.equal(csv.rejectsTotal, 0);
  });

  it('bounds events shards in rows without splitting a person across shards', async () => {
    const shards = shardsOf(csv.out, 'events');
    assert.ok(shards.length > 3);
    for (const sh of shards) assert.ok(sh.rows < 50_000 + 5_000, `${sh.path}: ${sh.rows}`);
    const [r] = await sql<{ split_persons: bigint }>(`SELECT count(*) split_persons FROM (
      SELECT person_id FROM read_parquet(${glob(csv.out, 'events')}, filename = true) GROUP BY person_id HAVING count(DISTINCT filename) > 1)`);
    assert.equal(Number(r.split_persons), 0);
  });

  it('reads the DuckDB database form, in several person ranges, into the same events and sequences', async () => {
    assert.deepEqual(shardsOf(db.out, 'events').map((x) => x.sha256), shardsOf(csv.out, 'events').map((x) => x.sha256));
    assert.deepEqual(shardsOf(db.out, 'pretrain').map((x) => x.sha256), shardsOf(csv.out, 'pretrain').map((x) => x.sha256));
  });
});

describe('emitted records match their JSON Schemas', () => {
  it('events and sequences of a run validate with ajv', async () => {
    const Ajv = (await import('ajv')).default;
    const { eventJsonSchema, sequenceJsonSchema } = await import('../../../schemas/records');
    const s = await run(OMOP.synthea, 'schemas');
    const ajv = new Ajv({ strict: false });
    const checkEvent = ajv.compile(eventJsonSchema);
    const checkSeq = ajv.compile(sequenceJsonSchema);
    const events = await sql<Record<string, unknown>>(`SELECT person_id::DOUBLE person_id, strftime(time, '%Y-%m-%dT%H:%M:%S.%f') AS time, "table", domain,
      concept_id::DOUBLE concept_id, source_concept_id::DOUBLE source_concept_id, decile, value, unit, visit_occurrence_id::DOUBLE visit_occurrence_id, origin
      FROM read_parquet(${glob(s.out, 'events')})`);
    assert.ok(events.length > 10000);
    for (const e of events) assert.ok(checkEvent(e), JSON.stringify(checkEvent.errors));
    const seqs = await sql<Record<string, unknown>>(`SELECT person_id::DOUBLE person_id, chunk, list_transform(concept_ids, x -> x::DOUBLE) concept_ids,
      deciles, ages, segments, record_ranks, domains, split FROM read_parquet(${glob(s.out, 'pretrain')})`);
    for (const q of seqs) assert.ok(checkSeq(q), JSON.stringify(checkSeq.errors));
  });
});
