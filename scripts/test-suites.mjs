#!/usr/bin/env node
// Which test file belongs to which suite, in one place. Prints the compiled files of a suite, one a
// line, for scripts/test.sh; exits 1 naming every test file listed in neither suite, in both, or
// listed but absent, so that a new test file must be classified.
//
//   node scripts/test-suites.mjs unit|integration|all
//
// unit: pure tests, run in seconds with nothing beside them: no Kafka broker, no dataset from
//   ../shared, no Python or browser, no `medrep` child process, no end-to-end training.
// integration: every other test file (a broker, the shared datasets, the CLI as a process, the
//   ecosystem checks in Python, the report in a browser, whole experiments).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const SUITES = {
  unit: [
    'bench/benchHarness', 'bench/mergeExternal', 'runners/kafka/stageOutputs', 'runners/kafka/stagePosition', 'runners/kafka/kafkaTopology', 'cli/cliDocs', 'cli/cliOptions', 'common/processTempDir', 'runners/kafka/lz4Frame',
    'runners/kafka/shardSink', 'runners/kafka/stageSendSlices', 'runners/kafka/streamCodec',
    'runners/kafka/watermarks', 'runners/local/samples', 'schemas/dateText', 'schemas/hashedIds', 'schemas/ids',
    'schemas/validation', 'scripts/importCheck', 'sources/duckColumns', 'sinks/columns', 'sinks/duckShardWriter', 'sinks/manifestReader', 'sinks/parquetShards', 'trainers/backend',
    'trainers/behrt/behrt', 'trainers/behrt/behrtAttention', 'trainers/behrt/behrtFollow',
    'trainers/behrt/ehrModels', 'trainers/behrt/experimentGrid', 'trainers/graph/grace',
    'trainers/metrics/ehrMetrics', 'trainers/representations/evaluate', 'trainers/representations/medtok',
    'trainers/representations/representationQuality', 'trainers/representations/representationTable',
    'trainers/representations/trainRepresentations', 'trainers/text/chatClient', 'trainers/text/textEncoder',
    'trainers/trainingLoop', 'transforms/labels/labelEdges', 'transforms/transforms',
  ],
  integration: [
    'runners/kafka/kafkaArrowInput', 'runners/kafka/kafkaStageOutputs', 'runners/kafka/kafkaWatermarkTick',
    'cli/cliErrors', 'cli/docCheck', 'common/outputDir', 'experiments/experiment', 'report/report',
    'runners/kafka/appendStore', 'runners/kafka/kafkaContinuous', 'runners/kafka/kafkaManifestLog',
    'runners/kafka/kafkaOps', 'runners/kafka/kafkaRowCheck', 'runners/kafka/kafkaSinkFault',
    'runners/kafka/kafkaStage', 'runners/kafka/kafkaStream', 'runners/kafka/kafkaStreamCli',
    'runners/kafka/kafkaStreamFaults', 'runners/kafka/kafkaTopicsProducer', 'runners/local/localRunner',
    'runners/local/realData', 'sinks/meds', 'sources/badInput', 'sources/labelTasks', 'sources/medsInput',
    'sources/memoryLimit', 'sources/strictInput', 'synth/synth', 'trainers/behrt/attentionAnalysis',
    'trainers/behrt/behrtExternal', 'trainers/behrt/trainOneClass', 'trainers/graph/conceptGraph',
    'trainers/representations/importRepresentations', 'transforms/labels/labelReference',
    'runners/kafka/kafkaScaleOut',
  ],
};

// Test files as repository paths without the `.test.ts` ending (test/a/b.test.ts -> a/b).
function testNames(dir, prefix = '') {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...testNames(path.join(dir, entry.name), `${prefix}${entry.name}/`));
    else if (entry.name.endsWith('.test.ts')) out.push(prefix + entry.name.slice(0, -'.test.ts'.length));
  }
  return out;
}

export function classificationProblems() {
  const present = new Set(testNames(path.join(ROOT, 'test')));
  const problems = [];
  for (const name of [...present].sort()) {
    const suites = Object.keys(SUITES).filter((s) => SUITES[s].includes(name));
    if (suites.length === 0) problems.push(`test/${name}.test.ts: in no suite; add it to unit or integration in scripts/test-suites.mjs`);
    if (suites.length > 1) problems.push(`test/${name}.test.ts: in both suites of scripts/test-suites.mjs`);
  }
  for (const [suite, names] of Object.entries(SUITES)) {
    for (const name of names) if (!present.has(name)) problems.push(`scripts/test-suites.mjs: ${suite} lists test/${name}.test.ts, which does not exist`);
  }
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const suite = process.argv[2];
  if (suite !== 'unit' && suite !== 'integration' && suite !== 'all') {
    process.stderr.write('usage: node scripts/test-suites.mjs unit|integration|all\n');
    process.exit(2);
  }
  const problems = classificationProblems();
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(p + '\n');
    process.exit(1);
  }
  const names = suite === 'all' ? [...SUITES.unit, ...SUITES.integration] : SUITES[suite];
  process.stdout.write(names.map((n) => `dist/test/${n}.test.js`).join('\n') + '\n');
}
