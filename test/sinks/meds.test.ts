// The MEDS output validates with the real `meds` package (0.4.x) in a Python venv: `npm test` (scripts/test.sh -> scripts/python-venv.sh) makes
// it (.cache/venv, with meds_reader when that installs) and exports MEDREP_PYTHON. Without that
// Python the test fails: MEDS conformance is not optional.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runLocal, RunSummary } from '../../runners/local/localRunner';
import { silentLogger } from '../../common/progress';
import { generateSynthetic } from '../../synth';
import { MEDS_VERSION } from '../../sinks/meds';
import { OMOP, lit, sql, tempDir } from '../helpers';

const REPO = path.resolve(__dirname, '../../..');
const PYTHON = process.env.MEDREP_PYTHON ?? path.join(REPO, '.cache/venv/bin/python');
const VALIDATOR = path.join(REPO, 'test/fixtures/validate_meds.py');

function python(args: string[]) {
  return spawnSync(PYTHON, args, { encoding: 'utf8' });
}

interface Validated {
  meds_package: string; rows: number; subjects: number; deaths: number; codes: number; label_files: number; meds_version: string;
  reader_subjects?: number; reader_events?: number;
}

function validate(medsRoot: string): Validated {
  const withReader = python(['-c', 'import meds_reader']).status === 0;
  const r = python([VALIDATOR, medsRoot, ...(withReader ? [tempDir('meds-reader')] : [])]);
  assert.equal(r.status, 0, `${medsRoot} does not validate with meds:\n${r.stderr}`);
  const v = JSON.parse(r.stdout.trim()) as Validated;
  if (withReader) assert.equal(v.reader_subjects, v.subjects, 'meds_reader reads every subject');
  if (withReader) assert.equal(v.reader_events, v.rows, 'meds_reader reads every row');
  return v;
}

async function expectations(s: RunSummary) {
  const [r] = await sql<{ subjects: bigint; deaths: bigint; causes: bigint }>(`SELECT count(DISTINCT person_id) subjects,
      count(*) FILTER (WHERE "table" = 'death') deaths, count(*) FILTER (WHERE "table" = 'death' AND concept_id <> 0) causes
    FROM read_parquet(${lit(path.join(s.out, 'events/*.parquet'))})`);
  return { subjects: Number(r.subjects), deaths: Number(r.deaths), causes: Number(r.causes) };
}

describe('MEDS 0.4 output, validated with the meds package', function () {
  this.timeout(240_000);
  before(() => {
    const r = python(['-c', 'import meds; print(meds.__version__)']);
    assert.equal(r.status, 0, `no Python with the meds package at ${PYTHON} (npm test creates .cache/venv through scripts/python-venv.sh; or set MEDREP_PYTHON): ${r.error?.message ?? r.stderr}`);
    assert.match(r.stdout.trim(), /^0\.4\./, 'meds 0.4.x');
  });

  it('GiBleed: data, codes, splits, dataset.json and labels follow the schemas', async () => {
    const s = await runLocal({ omop: OMOP.gibleed, out: path.join(tempDir('meds-gib'), 'out'), log: silentLogger });
    const v = validate(path.join(s.out, 'meds'));
    const e = await expectations(s);
    assert.equal(v.subjects, e.subjects);
    assert.equal(v.rows, s.eventsOutTotal + e.causes + 2 * e.subjects, 'every event, causes of death, and birth and gender per subject');
    assert.equal(v.meds_version, MEDS_VERSION);
    assert.equal(v.label_files, s.tasks.length, 'one label file per binary task (phenotypes skipped)');
  });

  it('a synthetic hospital (deaths with causes, the 24-label phenotype task) follows the schemas', async () => {
    const omop = path.join(tempDir('meds-synth'), 'omop');
    await generateSynthetic({ persons: 300, seed: 11, out: omop, format: 'parquet', site: 'A' });
    const s = await runLocal({ omop, out: path.join(tempDir('meds-synth-out'), 'out'), log: silentLogger });
    const v = validate(path.join(s.out, 'meds'));
    const e = await expectations(s);
    assert.ok(e.deaths > 0 && e.causes > 0, 'the hospital has deaths with causes');
    assert.equal(v.deaths, e.deaths, 'each death is one MEDS_DEATH');
    assert.equal(v.rows, s.eventsOutTotal + e.causes + 2 * e.subjects);
    const [death] = await sql<{ n: bigint }>(`SELECT count(*) n FROM read_parquet(${lit(path.join(s.out, 'meds/data/*.parquet'))}) WHERE "table" = 'death' AND code <> 'MEDS_DEATH'`);
    assert.equal(Number(death.n), e.causes, 'the cause of a death is its own event');
    assert.ok(s.tasks.some((t) => t.task === 'phenotypes'), 'the synthetic vocabulary has ICD9CM');
    assert.equal(v.label_files, s.tasks.length - 1 + 24, 'phenotypes: one label file per phenotype');
    const dataset = JSON.parse(fs.readFileSync(path.join(s.out, 'meds/metadata/dataset.json'), 'utf8'));
    assert.equal(dataset.meds_version, '0.4.1');
  });
});
