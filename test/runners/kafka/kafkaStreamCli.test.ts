// The Kafka runner from the command line, as a user runs it on a small hospital with records the
// reader cannot use: `medrep produce` carries the physical line of each into the reject, the
// stream's progress lines count rows, its final JSON names the MEDS copy it wrote, and a replay
// from a time after the last message says so and exits 2.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLocal } from '../../../runners/local/localRunner';
import { silentLogger } from '../../../common/progress';
import { BROKERS, uniquePrefix } from '../../helpers/kafka';
import { lit, sql, tempDir } from '../../helpers';
import { errorLine, medrep } from '../../helpers/cli';
import { GOOD_MEASUREMENTS, smallHospital } from '../../helpers/smallHospital';

interface RejectLine {
  row: number;
  line?: number;
  column: string;
  reason: string;
}

const rejectsOf = (out: string, table: string): RejectLine[] =>
  fs.readFileSync(path.join(out, 'rejects', `${table}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as RejectLine)
    .map((r) => ({ row: r.row, line: r.line, column: r.column, reason: r.reason })).sort((a, b) => a.row - b.row);

describe('medrep produce, stream and replay from the command line (real broker)', function () {
  this.timeout(240_000);

  it('rejects carry the physical line, progress counts rows, the summary names the MEDS output, a replay after the last message exits 2', async () => {
    const body = [
      GOOD_MEASUREMENTS[0],
      '4,1,3004410,2020-01-03,,6.6,%,"HbA1c\nlab",10', // lines 3-4: one record, a quoted line break
      '5,1,3004410,2020-01-04,,4.4,mg,dL,HbA1c,10', // line 5 (record 3): an unquoted comma
      GOOD_MEASUREMENTS[1],
      '7,1,3004410,2020-01-04,,"2.5,%,HbA1c,10', // line 7 (record 5): a quote that never closes
      GOOD_MEASUREMENTS[2],
    ].join('\n') + '\n';
    const omop = smallHospital(body);
    const local = await runLocal({ omop, out: path.join(tempDir('cli-local'), 'out'), tasks: 'none', log: silentLogger });
    const prefix = uniquePrefix();
    const kafka = ['--brokers', BROKERS, '--topic-prefix', prefix];

    const produced = medrep(['produce', '--omop', omop, ...kafka, '--partitions', '2']);
    assert.equal(produced.status, 0, produced.stderr);
    const p = JSON.parse(produced.stdout.trim().split('\n').pop()!) as { rows: number; dead_lettered: number };

    const out = path.join(tempDir('cli-stream'), 'out');
    const s = medrep(['stream', ...kafka, '--out', out, '--vocab', omop, '--artifacts', path.join(local.out, 'artifacts'), '--tasks', 'none', '--exit-when-idle', '2', '--health-interval', '1']);
    assert.equal(s.status, 0, s.stderr);
    const summary = JSON.parse(s.stdout.trim().split('\n').pop()!);

    // The records the reader could not use: the same line, row, column and reason in both runners.
    const localRejects = rejectsOf(local.out, 'measurement');
    assert.deepEqual(localRejects.map((r) => [r.line, r.row]), [[5, 3], [7, 5]], 'physical lines, not row + 1');
    assert.deepEqual(rejectsOf(out, 'measurement'), localRejects);

    // Progress in rows: canonicalize read every row produce sent (several per message), the sink every row it wrote.
    const stopped = (stage: string) => new RegExp(`^\\[medrep ${stage}\\] rows in ([\\d,]+) \\([\\d,]+/s\\) out ([\\d,]+) .* messages consumed ([\\d,]+) .* lag \\d+ messages.* stopped \\(idle\\)$`, 'm').exec(s.stderr);
    const num = (x: string) => Number(x.replace(/,/g, ''));
    const canon = stopped('canonicalize');
    assert.ok(canon, s.stderr);
    assert.equal(num(canon[1]), p.rows, 'canonicalize: rows in = rows produced');
    const sink = stopped('sink');
    assert.ok(sink, s.stderr);
    assert.equal(num(sink[1]), summary.rows.events + summary.rows.pretrain + summary.rows.samples, 'sink: rows in = rows in its shards');
    assert.match(s.stderr, /^\[medrep trajectory\] rows in [\d,]+ \([\d,]+\/s\) out [\d,]+ \([\d,]+\/s\) dlq \d+, messages consumed/m);

    // The MEDS copy in the final summary: its folder, data files and rows, as on disk.
    const dataFiles = fs.readdirSync(path.join(out, 'meds', 'data')).filter((f) => f.endsWith('.parquet'));
    const [rows] = await sql<{ n: bigint }>(`SELECT count(*) AS n FROM read_parquet(${lit(path.join(out, 'meds', 'data', '*.parquet'))})`);
    assert.ok(Number(rows.n) > summary.rows.events, 'MEDS rows: the events and the birth and gender rows');
    assert.deepEqual(summary.meds, { path: path.join(out, 'meds'), shards: dataFiles.length, rows: Number(rows.n), label_files: 0 });
    assert.match(s.stderr, new RegExp(`stream: MEDS in ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/meds: ${dataFiles.length} data files, ${rows.n} rows`));

    // Replay: from a time after the last message there is nothing to rebuild; it says so.
    const verify = path.join(out, 'manifest.json');
    const late = medrep(['replay', ...kafka, '--out', path.join(tempDir('cli-replay'), 'late'), '--verify', verify, '--from-time', '2100-01-01T00:00:00Z']);
    assert.equal(late.status, 2, late.stderr);
    assert.match(errorLine(late), /^medrep: --from-time 2100-01-01T00:00:00\.000Z is after the last message of the run's topics \(.*medrep\.events.*\): nothing to replay/);
    assert.ok(!/^\s+at /m.test(late.stderr), late.stderr);
    const all = medrep(['replay', ...kafka, '--out', path.join(tempDir('cli-replay'), 'all'), '--verify', verify, '--from-time', '1970-01-01T00:00:00Z']);
    assert.equal(all.status, 0, all.stderr);
    assert.match(all.stdout, /^(\d+) of \1 shards match the manifest/m);
  });
});
