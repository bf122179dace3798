// The `medrep` command line. User errors end with one clear message and a non-zero exit code;
// anything else is a bug and keeps its stack trace.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs, requireFlag } from './args';
import { UserError } from './errors';
import { runLocal } from './localRunner';
import { consoleLogger } from './progress';
import { formatSummary } from './summary';
import { TaskSelection } from './runTasks';
import { generateSynthetic, runSynth } from './synth';
import { runBench } from '../bench/run';
import { runStatusCommand, runTopicsCommand } from './kafka';
import { runProduceCommand, runReplayCommand, runStreamCommand } from './kafka/streamCommands';
import { runTrainRepresentations } from '../trainers/representations/trainRepresentations';
import { runImportRepresentations } from '../trainers/representations/importRepresentations';
import { runTrainEhr } from '../trainers/behrt/cli';
import { experimentExternal, runExperimentCommand } from './experiment';

const USAGE = `medrep: OMOP CDM to EHR foundation-model training data

  medrep demo [--out DIR] [--persons N]     generate a small synthetic hospital and run the pipeline on it
  medrep run --omop DIR|FILE.duckdb [--vocab DIR] --out DIR
                                            run the local (embedded) pipeline
  medrep synth --persons N|--rows N --seed S --out DIR [--format csv|parquet] [--site A|B] [--ids sequential|hashed] [--inject-errors]
                                            write a synthetic OMOP CDM folder (vocabulary included)
  medrep bench [--rows 1000000,10000000]    local runner vs a DuckDB-only baseline (bench/results/)
  medrep train representations --vocab DIR --out OUT [--deciles FILE] [--descriptions FILE] [--endpoint URL]
                                            text MLM + GCL with distillation -> text.parquet, medrep.parquet
  medrep train ehr --shards OUT --task T|pretrain [--embeddings vanilla|medrep|text --representations FILE] [--follow] [--paper-size]
                                            BEHRT pretraining / finetuning + evaluation / continuous retraining
  medrep experiment external [--omop-a DIR --omop-b DIR] [--out DIR]
                                            train at site A, evaluate at A and B: vanilla vs text-only vs MedRep
  medrep import-representations --npy FILE --index CSV --out FILE.parquet
                                            the published MedRep release into the same layout
  medrep topics --brokers HOST:PORT [--partitions N]   create the pipeline's Kafka topics
  medrep status --brokers HOST:PORT         consumer-group lag and stage health
  medrep produce --omop DIR|FILE.duckdb [--vocab DIR] --brokers HOST:PORT [--partitions N] [--rows-per-message N]
                                            load an OMOP folder into the omop.<table> topics
  medrep stream --brokers HOST:PORT --out DIR --vocab DIR --artifacts DIR|--deciles FILE [--exit-when-idle S]
                                            the Kafka runner: stages between topics, same output as run
  medrep replay --brokers HOST:PORT (--from-offsets FILE|--from-time ISO) --out DIR --verify MANIFEST
                                            rebuild a Kafka run's shards and check them against its manifest
  medrep help                               this text

run options: --max-events N (window/chunk length, default 2048) --events-per-shard N
             --sequences-per-shard N --memory-limit 800MB --no-meds
             --tasks all|none|mortality,readmission,... --task-dir DIR (your task files)
             --task-concepts DIR (concept lists the task files name; default ../shared/tasks)`;

type Command = (argv: string[]) => Promise<void>;

function taskFlags(flags: Record<string, unknown>): TaskSelection {
  const t = flags.tasks as string | undefined;
  return {
    tasks: t === undefined || t === 'all' ? 'all' : t === 'none' ? 'none' : t.split(',').map((x) => x.trim()).filter(Boolean),
    taskDir: flags['task-dir'] as string | undefined,
    taskConcepts: flags['task-concepts'] as string | undefined,
  };
}

const commands: Record<string, Command> = {
  async run(argv) {
    const p = parseArgs(
      argv,
      { omop: 'string', vocab: 'string', out: 'string', 'max-events': 'number', 'events-per-shard': 'number', 'sequences-per-shard': 'number', 'memory-limit': 'string', 'no-meds': 'boolean', tasks: 'string', 'task-dir': 'string', 'task-concepts': 'string' },
      'medrep run',
    );
    const summary = await runLocal({
      omop: requireFlag(p, 'omop', 'medrep run'),
      vocab: p.flags.vocab as string | undefined,
      out: requireFlag(p, 'out', 'medrep run'),
      maxEvents: p.flags['max-events'] as number | undefined,
      eventsPerShard: p.flags['events-per-shard'] as number | undefined,
      sequencesPerShard: p.flags['sequences-per-shard'] as number | undefined,
      memoryLimit: p.flags['memory-limit'] as string | undefined,
      meds: !p.flags['no-meds'],
      ...taskFlags(p.flags),
      log: consoleLogger,
    });
    process.stdout.write(formatSummary(summary) + '\n');
  },
  async demo(argv) {
    const p = parseArgs(argv, { out: 'string', persons: 'number', seed: 'number', 'no-experiment': 'boolean' }, 'medrep demo');
    const out = path.resolve((p.flags.out as string | undefined) ?? path.join(os.tmpdir(), 'medrep-demo'));
    const omop = path.join(out, 'omop');
    fs.rmSync(omop, { recursive: true, force: true }); // the demo's own folder, regenerated each time
    const persons = (p.flags.persons as number | undefined) ?? 500;
    consoleLogger.info(`demo: generating a synthetic hospital of ${persons} persons in ${omop}`);
    await generateSynthetic({ persons, seed: (p.flags.seed as number | undefined) ?? 42, out: omop, format: 'parquet', site: 'A' });
    const summary = await runLocal({ omop, out: path.join(out, 'run'), log: consoleLogger });
    process.stdout.write(formatSummary(summary) + '\n');
    if (p.flags['no-experiment']) return;
    // A small external validation (issue: the demo ends with an internal/external table): tiny
    // models and few epochs, so it takes about a minute on two cores; numbers are illustrative.
    consoleLogger.info('demo: small external-validation experiment (site A -> site B)');
    const r = await experimentExternal({
      out: path.join(out, 'experiment'), personsA: 1000, personsB: 400, tasks: ['mortality', 'long_stay'], seeds: [1],
      epochs: 3, textEpochs: 2, gclEpochs: 3, valSplits: ['pretrain_val'], testSplits: ['finetune_val', 'finetune_test'],
      log: { info: () => undefined, warn: consoleLogger.warn },
    });
    process.stdout.write(`\nexternal validation (train at synthetic site A, test at A and at site B; tiny models, 1 seed):\n${r.table}\n`);
  },
  async synth(argv) {
    try {
      await runSynth(argv);
    } catch (e) {
      // The generator's own argument errors are user errors: one line, no stack.
      if (e instanceof Error && !(e instanceof UserError) && /^synth: /.test(e.message)) throw new UserError(e.message);
      throw e;
    }
  },
  async train(argv) {
    const [what, ...rest] = argv;
    if (what === 'representations') {
      process.exitCode = await runTrainRepresentations(rest);
      return;
    }
    if (what === 'ehr') {
      await runTrainEhr(rest);
      return;
    }
    throw new UserError(`medrep train: expected "representations" or "ehr", got "${what ?? ''}"`);
  },
  async experiment(argv) {
    await runExperimentCommand(argv);
  },
  async 'import-representations'(argv) {
    await runImportRepresentations(argv);
  },
  async topics(argv) {
    await runTopicsCommand(argv);
  },
  async status(argv) {
    await runStatusCommand(argv);
  },
  async produce(argv) {
    await runProduceCommand(argv);
  },
  async stream(argv) {
    await runStreamCommand(argv);
  },
  async replay(argv) {
    await runReplayCommand(argv);
  },
  async bench(argv) {
    await runBench(argv);
  },
  async help() {
    process.stdout.write(USAGE + '\n');
  },
};

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const command = commands[name ?? 'help'];
  try {
    if (!command) throw new UserError(`unknown command "${name}"\n\n${USAGE}`);
    await command(rest);
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(`medrep: ${e.message}\n`);
      process.exitCode = e.exitCode;
      return;
    }
    throw e;
  }
}
