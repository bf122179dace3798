// Topics and the OMOP row producer against the real broker: configs as created, rows keyed by
// person_id and co-partitioned, poison rows in the dead-letter topic with their headers.
import { strict as assert } from 'assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CompressionCodecs, CompressionTypes, ConfigResourceTypes, Kafka } from 'kafkajs';
import { OMOP_SCHEMA_VERSION, CLINICAL_TABLES } from '../../../schemas/omop';
import { runTopicsCommand } from '../../../runners/kafka/commands';
import { parseOptions } from '../../../cli/options';
import { kafkaOptions } from '../../../runners/kafka/config';
import { KAFKA_OPTIONS, kafkaOf } from '../../../cli/kafka';
import { DLQ_HEADERS } from '../../../runners/kafka/deadLetter';
import { OmopRowProducer, ProduceProgress } from '../../../runners/kafka/omopProducer';
import { changelogTopicSpec, ensureTopics, pipelineTopicSpecs, TopicNames } from '../../../runners/kafka/topics';
import { CONTROL_HEADER, END_OF_LOAD, produceOmop } from '../../../runners/kafka/omopLoad';
import { errorLine, medrep } from '../../helpers/cli';
import { silentLogger } from '../../../common/progress';
import { EXIT, UserError } from '../../../common/errors';
import { BROKERS, readAll, testKafka, uniquePrefix } from '../../helpers/kafka';
import { GOOD_MEASUREMENTS, smallHospital } from '../../helpers/smallHospital';

/** Kafka's murmur2 partitioner (org.apache.kafka.common.utils.Utils.murmur2), written out here. */
function javaPartition(key: string, partitions: number): number {
  const data = Buffer.from(key, 'utf8');
  const m = 0x5bd1e995;
  let h = 0x9747b28c ^ data.length;
  const len4 = data.length & ~3;
  for (let i = 0; i < len4; i += 4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = data.length & 3;
  if (rest >= 3) h ^= data[len4 + 2] << 16;
  if (rest >= 2) h ^= data[len4 + 1] << 8;
  if (rest >= 1) {
    h ^= data[len4];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return (h & 0x7fffffff) % partitions;
}

async function topicConfigs(kafka: Kafka, topic: string): Promise<Record<string, string>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const r = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false });
    const out: Record<string, string> = {};
    for (const e of r.resources[0].configEntries) out[e.configName] = e.configValue;
    return out;
  } finally {
    await admin.disconnect();
  }
}

describe('kafka topics and producer (real broker)', function () {
  this.timeout(90_000);
  const kafka = testKafka();
  const names = new TopicNames(uniquePrefix());

  it('reads brokers, SASL and TLS options from flags and the environment', () => {
    const connectionOf = (argv: string[], env: NodeJS.ProcessEnv) => kafkaOf(parseOptions('medrep topics', KAFKA_OPTIONS, argv).options, env);
    const o = connectionOf(['--brokers', 'a:9092,b:9093', '--tls', '--sasl-mechanism', 'SCRAM-SHA-512', '--sasl-username', 'u'], {
      KAFKA_SASL_PASSWORD: 'p',
    });
    assert.deepEqual(o.brokers, ['a:9092', 'b:9093']);
    assert.deepEqual(o.tls, { enabled: true, caFile: undefined });
    assert.deepEqual(o.sasl, { mechanism: 'scram-sha-512', username: 'u', password: 'p' });
    assert.throws(() => connectionOf(['--brokers', 'nohostport'], {}), /not HOST:PORT/);
    assert.throws(() => connectionOf(['--sasl-mechanism', 'plain'], {}), /needs --sasl-username/);
  });

  it('creates omop.<table>, dead-letter and changelog topics with their configs, once', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const specs = [...pipelineTopicSpecs(names, { partitions: 3 }), changelogTopicSpec(names.changelog('s', 'st'), 3)];
      const created = await ensureTopics(admin, specs);
      assert.equal(created.length, CLINICAL_TABLES.length + 2);
      assert.deepEqual(await ensureTopics(admin, specs), [], 'a second call creates nothing');
      const meta = await admin.fetchTopicMetadata({ topics: [names.omop('person'), names.omop('measurement'), names.dlq] });
      const counts = Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]));
      assert.deepEqual(counts, { [names.omop('person')]: 3, [names.omop('measurement')]: 3, [names.dlq]: 1 });
      await assert.rejects(
        ensureTopics(admin, pipelineTopicSpecs(names, { partitions: 4 })),
        (e: unknown) => e instanceof UserError && e.exitCode === EXIT.user && /exists with 3 partitions, but 4 are configured; .*pass --partitions 3\)$/.test(e.message),
        'a user error (exit 2) that names the count to pass',
      );
    } finally {
      await admin.disconnect();
    }
    const person = await topicConfigs(kafka, names.omop('person'));
    assert.equal(person['cleanup.policy'], 'delete');
    assert.equal(person['retention.ms'], '-1');
    const changelog = await topicConfigs(kafka, names.changelog('s', 'st'));
    assert.equal(changelog['cleanup.policy'], 'compact');
  });

  it('medrep topics creates the pipeline topics once, under the prefix, with the partition count asked', async () => {
    const prefix = uniquePrefix();
    const lines: string[] = [];
    const args = { kafka: kafkaOptions({ brokers: BROKERS, topicPrefix: prefix }, {}), partitions: 2, retentionMs: 604800000 };
    const created = await runTopicsCommand(args, (l) => lines.push(l));
    const p = new TopicNames(prefix);
    assert.deepEqual(created.sort(), [...CLINICAL_TABLES.map((t) => p.omop(t.table)), p.dlq].sort());
    assert.ok(lines.some((l) => l === `created ${p.omop('person')} (2 partitions)`));
    assert.equal((await topicConfigs(kafka, p.omop('drug_exposure')))['retention.ms'], '604800000');
    assert.deepEqual(await runTopicsCommand(args, () => undefined), []);
  });

  it('sends valid rows keyed by person_id and co-partitioned, poison rows to the dead-letter topic', async () => {
    const progress: ProduceProgress[] = [];
    const producer = await OmopRowProducer.connect(kafka, { names, batchRows: 7, onProgress: (p) => progress.push(p), progressIntervalMs: 0 });
    const persons = [1, 2, 3, 10, 11, 12, 100, 1234567890123];
    for (const id of persons) {
      await producer.send('person', { person_id: id, gender_concept_id: 8507, year_of_birth: 1950 }, `person.csv:${id}`);
      await producer.send(
        'condition_occurrence',
        JSON.stringify({ condition_occurrence_id: id * 10, person_id: id, condition_concept_id: 201826, condition_start_date: '2101-03-04' }),
        `condition.csv:${id}`,
      );
    }
    // DuckDB hands BIGINT columns over as BigInt.
    await producer.send('person', { person_id: 77n, gender_concept_id: 8532n, year_of_birth: 1980n }, 'person.parquet:9');
    await producer.send('person', '{"person_id": 5, "gender_', 'person.csv:20');
    await producer.send('person', { person_id: 'five', gender_concept_id: 8507, year_of_birth: 1950 }, 'person.csv:21');
    await producer.send('condition_occurrence', { condition_occurrence_id: 1, person_id: 3, condition_concept_id: 1, condition_start_date: '2101-02-30' }, 'condition.csv:22');
    await producer.send('note', { note_id: 1, person_id: 3 }, 'note.csv:1');
    await producer.send('person', [1, 2, 3], 'person.json:4');
    const stats = await producer.close();

    assert.equal(stats.rows, persons.length * 2 + 1);
    assert.deepEqual(stats.byTable, { person: persons.length + 1, condition_occurrence: persons.length });
    assert.equal(stats.deadLettered, 5);
    assert.deepEqual(stats.deadLetteredByKind, { 'not-json': 1, 'invalid-row': 2, 'unknown-table': 1, 'not-an-object': 1 });
    assert.ok(progress.length >= 2, 'progress was reported while sending and at the end');
    assert.equal(progress[progress.length - 1].rows, stats.rows);

    const personRows = await readAll(kafka, names.omop('person'));
    const conditionRows = await readAll(kafka, names.omop('condition_occurrence'));
    assert.deepEqual(personRows.map((m) => Number(m.key)).sort((a, b) => a - b), [...persons, 77].sort((a, b) => a - b));
    for (const m of [...personRows, ...conditionRows]) {
      const row = JSON.parse(m.value!);
      assert.equal(m.key, String(row.person_id));
      assert.equal(m.partition, javaPartition(m.key!, 3), `person ${m.key} is in the partition a Java producer would choose`);
    }
    assert.deepEqual(JSON.parse(personRows.find((m) => m.key === '77')!.value!), { person_id: 77, gender_concept_id: 8532, year_of_birth: 1980 });

    const dlq = await readAll(kafka, names.dlq);
    assert.equal(dlq.length, 5);
    const bySource = new Map(dlq.map((m) => [m.headers[DLQ_HEADERS.source], m]));
    for (const m of dlq) assert.equal(m.headers[DLQ_HEADERS.schemaVersion], OMOP_SCHEMA_VERSION);
    const notJson = bySource.get('person.csv:20')!;
    assert.match(notJson.headers[DLQ_HEADERS.reason], /^not-json: /);
    assert.equal(notJson.value, '{"person_id": 5, "gender_', 'the bytes are kept as they came');
    assert.equal(notJson.headers[DLQ_HEADERS.table], 'person');
    assert.match(bySource.get('person.csv:21')!.headers[DLQ_HEADERS.reason], /^invalid-row: column person_id: not an integer$/);
    assert.match(bySource.get('condition.csv:22')!.headers[DLQ_HEADERS.reason], /^invalid-row: column condition_start_date: not a valid date /);
    assert.equal(bySource.get('condition.csv:22')!.key, '3');
    assert.equal(bySource.get('note.csv:1')!.headers[DLQ_HEADERS.reason], 'unknown-table: no OMOP table named "note"');
    assert.match(bySource.get('person.json:4')!.headers[DLQ_HEADERS.reason], /^not-an-object: /);
  });

  it('medrep produce dead-letters a CSV record it cannot read, with file and row, and sends the rest', async () => {
    const loadNames = new TopicNames(uniquePrefix());
    const omop = smallHospital([GOOD_MEASUREMENTS[0], '4,1,3004410,2020-01-04,,4.4,mg,dL,HbA1c,10', GOOD_MEASUREMENTS[1]].join('\n') + '\n');
    const r = await produceOmop({ omop, kafka: { brokers: [BROKERS], clientId: 'medrep-test', topicPrefix: loadNames.prefix }, client: kafka, partitions: 3, log: silentLogger, endOfLoad: false });
    assert.equal(r.byTable.measurement, 2, 'the records before and after the bad one');
    assert.equal(r.deadLettered, 2, 'the unreadable record and the person born in 1750');
    const dead = (await readAll(kafka, loadNames.dlq)).find((m) => m.headers[DLQ_HEADERS.table] === 'measurement')!;
    assert.equal(dead.headers[DLQ_HEADERS.source], 'measurement.csv:2');
    assert.equal(dead.headers[DLQ_HEADERS.reason], 'invalid-row: column (row): 10 fields where the header has 9');
    assert.equal(dead.value, '4,1,3004410,2020-01-04,,4.4,mg,dL,HbA1c,10', 'the record as read');
  });

  it('medrep produce --compression lz4 (default), gzip and none send the same rows; lz4 batches need the LZ4 codec medrep registers', async () => {
    const omop = smallHospital(GOOD_MEASUREMENTS.join('\n') + '\n');
    const rowsOf = async (prefix: string) => {
      const out: string[] = [];
      for (const spec of CLINICAL_TABLES) for (const m of await readAll(kafka, new TopicNames(prefix).omop(spec.table))) if (m.headers[CONTROL_HEADER] === undefined) out.push(`${spec.table}/${m.key}:${m.value}`);
      return out.sort();
    };
    const sent: Record<string, string[]> = {};
    const prefixes: Record<string, string> = {};
    for (const compression of ['lz4', 'gzip', 'none']) {
      prefixes[compression] = uniquePrefix();
      const r = medrep(['produce', '--omop', omop, '--brokers', BROKERS, '--topic-prefix', prefixes[compression], '--partitions', '2', ...(compression === 'lz4' ? [] : ['--compression', compression])]);
      assert.equal(r.status, 0, r.stderr);
      sent[compression] = await rowsOf(prefixes[compression]);
    }
    assert.ok(sent.lz4.length >= 5, `messages read back: ${sent.lz4.length}`);
    assert.deepEqual(sent.gzip, sent.lz4);
    assert.deepEqual(sent.none, sent.lz4);
    // kafkajs alone reads gzip only: without medrep's codec the default topics do not read back.
    const codec = CompressionCodecs[CompressionTypes.LZ4];
    delete (CompressionCodecs as Record<number, unknown>)[CompressionTypes.LZ4];
    try {
      // (kafkajs then reads the compressed records as plain ones: an error or wrong rows, never these.)
      assert.notDeepEqual(await rowsOf(prefixes.lz4).catch((e: Error) => e.message), sent.lz4, 'the default topics hold LZ4 batches');
      assert.deepEqual(await rowsOf(prefixes.gzip), sent.lz4, 'gzip needs no codec of ours');
    } finally {
      CompressionCodecs[CompressionTypes.LZ4] = codec;
    }
  });

  it('medrep produce --markers none sends the rows and no end-of-load marker; the default (end-of-load) ends every partition of every table with one', async () => {
    const omop = smallHospital(GOOD_MEASUREMENTS.join('\n') + '\n');
    for (const mode of ['none', 'end-of-load']) {
      const loadNames = new TopicNames(uniquePrefix());
      const r = medrep(['produce', '--omop', omop, '--brokers', BROKERS, '--topic-prefix', loadNames.prefix, '--partitions', '2', ...(mode === 'none' ? ['--markers', 'none'] : [])]);
      assert.equal(r.status, 0, r.stderr);
      const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
      const rows: Record<string, number> = {};
      const markers: string[] = [];
      for (const spec of CLINICAL_TABLES) {
        for (const m of await readAll(kafka, loadNames.omop(spec.table))) {
          if (m.headers[CONTROL_HEADER] !== undefined) markers.push(`${spec.table}/${m.partition}:${m.headers[CONTROL_HEADER]}`);
          else {
            const value = JSON.parse(m.value!);
            rows[spec.table] = (rows[spec.table] ?? 0) + (Array.isArray(value) ? value.length : 1);
          }
        }
      }
      // Person 3 (born 1750) is dead-lettered; its visit is a valid row (the stream sets it aside).
      assert.deepEqual(rows, { person: 2, visit_occurrence: 3, measurement: 3 }, `${mode}: the valid rows are in the topics`);
      assert.deepEqual(rows, summary.by_table);
      const expected = mode === 'none' ? [] : CLINICAL_TABLES.flatMap((t) => [0, 1].map((p) => `${t.table}/${p}:${END_OF_LOAD}`));
      assert.deepEqual(markers.sort(), expected.sort(), `${mode}: end-of-load markers`);
      assert.equal(summary.markers, expected.length);
    }
    const bad = medrep(['produce', '--omop', omop, '--brokers', BROKERS, '--markers', 'some']);
    assert.equal(bad.status, 2);
    assert.equal(errorLine(bad), 'medrep: medrep produce: --markers must be end-of-load or none, got "some"');
  });

  it('an input without a required table: exit 2 with one line naming it, the producer closed (the command does not hang)', () => {
    const omop = smallHospital(GOOD_MEASUREMENTS.join('\n') + '\n');
    fs.rmSync(path.join(omop, 'person.csv'));
    // The bound only keeps a hang from stalling the suite; the command ends in about a second.
    const r = medrep(['produce', '--omop', omop, '--brokers', BROKERS, '--topic-prefix', uniquePrefix(), '--partitions', '1'], { timeout: 60_000 });
    assert.equal(r.signal, null, 'ended by itself, not by the bound');
    assert.equal(r.status, 2, r.stderr);
    assert.equal(errorLine(r), `medrep: ${omop}: required OMOP table person not found (looked for person.csv/.parquet in any case)`);
  });
});
