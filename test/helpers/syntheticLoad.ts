// The start of the Kafka worker tests: a synthetic site A (Parquet) run by the local runner, then
// produced to fresh topics, with the environment the test stream worker reads
// (test/fixtures/streamWorker.ts) for its prefix, output, vocabulary and artifacts.
import * as path from 'node:path';
import { generateSynthetic } from '../../synth';
import { runLocal } from '../../runners/local/localRunner';
import { produceOmop, ProduceOptions } from '../../runners/kafka/omopLoad';
import { silentLogger } from '../../common/progress';
import { testKafka, uniquePrefix } from './kafka';
import { kafkaOpts } from './streamCompare';
import { tempDir } from './index';

export async function producedSyntheticLoad(name: string, persons: number, seed: number, partitions: number, produce: Partial<ProduceOptions> = {}) {
  const dir = tempDir(name);
  const omop = path.join(dir, 'omop');
  await generateSynthetic({ persons, seed, out: omop, format: 'parquet', site: 'A' });
  const local = await runLocal({ omop, out: path.join(dir, 'local'), log: silentLogger, meds: false });
  const prefix = uniquePrefix();
  const kafka = kafkaOpts(prefix);
  const client = testKafka();
  await produceOmop({ omop, kafka, client, partitions, log: silentLogger, ...produce });
  const out = path.join(dir, 'stream');
  const workerEnv = { MEDREP_TEST_PREFIX: prefix, MEDREP_OUT: out, MEDREP_VOCAB: omop, MEDREP_ARTIFACTS: path.join(local.out, 'artifacts') };
  return { dir, omop, local, prefix, kafka, client, out, workerEnv };
}
