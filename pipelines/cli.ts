// The `medrep` command line. Every error ends with one line on stderr and the exit code of its
// kind (errors.ts EXIT: 2 user, 3 environment, 1 internal); MEDREP_DEBUG=1 adds the stack.
// `medrep <command> --help` prints that command's options, `medrep help` those of every command.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FlagSpec, optionLines, parseArgs, requireFlag, wantsHelp } from '../common/args';
import { classifyError, UserError } from '../common/errors';
import { runLocal } from './localRunner';
import { consoleLogger } from '../common/progress';
import { formatSummary } from './summary';
import { withOutputDir } from '../common/outputDir';
import { TaskSelection } from './runTasks';
import { generateSynthetic, runSynth } from './synth';
import { runBench } from './benchCommand';
import { runStatusCommand, runTopicsCommand } from './kafka';
import { PRODUCE_SPEC, REPLAY_SPEC, runProduceCommand, runReplayCommand, runStreamCommand, STREAM_SPEC } from './kafka/streamCommands';
import { STATUS_SPEC, TOPICS_SPEC } from './kafka/commands';
import { runTrainRepresentations, USAGE as TRAIN_REPRESENTATIONS_USAGE } from '../trainers/representations/trainRepresentations';
import { runImportRepresentations, USAGE as IMPORT_REPRESENTATIONS_USAGE } from '../trainers/representations/importRepresentations';
import { runTrainEhr, TRAIN_EHR_USAGE } from '../trainers/behrt/cli';
import { ANALYZE_SPEC, runAnalyzeCommand } from '../trainers/behrt/analyzeCli';
import { EXPERIMENT_SPEC, experimentExternal, runExperimentCommand } from './experiment';
import { BENCH_SPEC } from './benchCommand';
import { SYNTH_SPEC } from './synth';
import { REPORT_SPEC, reportAfterRun, runReportCommand } from './report';

const USAGE = `medrep: OMOP CDM to EHR foundation-model training data

  medrep demo [--out DIR] [--persons N]     generate a small synthetic hospital and run the pipeline on it
  medrep run --omop DIR|FILE.duckdb|--meds DIR [--vocab DIR] --out DIR
                                            run the local (embedded) pipeline; --meds reads a MEDS dataset
                                            (DIR/data/*.parquet, codes such as SNOMED/22298006 resolved
                                            through the vocabulary; README "MEDS input")
  medrep synth --persons N|--rows N --seed S --out DIR [--format csv|parquet] [--site A|B] [--ids sequential|hashed] [--inject-errors]
                                            write a synthetic OMOP CDM folder (vocabulary included)
  medrep bench [--rows 1000000,10000000]    local runner vs a DuckDB-only baseline (bench/results/)
  medrep train representations --vocab DIR --out OUT [--deciles FILE] [--descriptions FILE] [--method lexical|paper|medtok]
                                            concept vectors (default: TF-IDF+SVD text, APPNP on the graph; paper: MLM + GCL with KD; medtok: the MedTok baseline)
  medrep train ehr --shards OUT --task T|pretrain [--model behrt|cdm-bert|med-bert] [--embeddings vanilla|medrep|text --representations FILE] [--follow] [--paper-size]
                                            BEHRT / CDM-BERT / Med-BERT pretraining / finetuning + evaluation / continuous retraining
  medrep experiment external [--omop-a DIR --omop-b DIR] [--out DIR] [--arms vanilla,medtok,text-only,no-lwf,medrep,medrep+text]
      [--models behrt,cdm-bert,med-bert] [--tasks mortality,long_stay,readmission,phenotypes,uti,fracture,sepsis,pneumonia,mi] [--seeds 1,2,3]
                                            train at site A, evaluate at A and B over arms x models x tasks x seeds (resumes finished cells)
  medrep report OUT                         OUT/report.html: one self-contained page about a run or an experiment
                                            (also written at the end of run, demo, stream and experiment)
  medrep analyze attention --model DIR[,DIR] --shards OUT --task T --vocab DIR --out DIR [--endpoint URL]
                                            concepts finetuned models attend to from [CLS] (CSV; with an LLM, their relevance)
  medrep import-representations --npy FILE --index CSV --out FILE.parquet
                                            the published MedRep release into the same layout
  medrep topics --brokers HOST:PORT [--partitions N]   create the pipeline's Kafka topics
  medrep status --brokers HOST:PORT         consumer-group lag and stage health
  medrep produce --omop DIR|FILE.duckdb [--vocab DIR] --brokers HOST:PORT [--partitions N] [--rows-per-message N] [--markers end-of-load|none]
                                            load an OMOP folder into the omop.<table> topics
  medrep stream --brokers HOST:PORT --out DIR --vocab DIR --artifacts DIR|--deciles FILE [--exit-when-idle S] [--close-on marker|watermark]
                                            the Kafka runner: stages between topics, same output as run
  medrep replay --brokers HOST:PORT (--from-offsets FILE|--from-time ISO) --out DIR --verify MANIFEST
                                            rebuild a Kafka run's shards and check them against its manifest
  medrep help                               this text and every option of every command
  medrep <command> --help                   the options of one command

run options: --max-events N (window/chunk length, default 2048) --events-per-shard N
             --sequences-per-shard N --no-meds --force (replace an earlier output)
             --memory-limit SIZE (DuckDB's cap, e.g. 2GB; default a sixteenth of the machine's memory, 512MiB to 4GiB)
             --tasks all|none|mortality,readmission,... --task-dir DIR (your task files)
             --task-concepts DIR (concept lists the task files name; default ../shared/tasks)

--out folders: medrep writes only into an empty folder or one it wrote (manifest.json or
.medrep-output.json); an earlier complete output is replaced only with --force; one run at a time.
exit codes: 0 done, 1 internal error, 2 user error (options, input, --out), 3 environment (disk
full, permission, Kafka broker unreachable), 4 replay mismatch, 5 stopped by a signal (the
stream's manifest says "complete": false).`;

const RUN_SPEC: FlagSpec = {
  omop: 'string', meds: 'string', vocab: 'string', out: 'string', 'max-events': 'number', 'events-per-shard': 'number', 'sequences-per-shard': 'number',
  'memory-limit': 'string', 'no-meds': 'boolean', tasks: 'string', 'task-dir': 'string', 'task-concepts': 'string', force: 'boolean',
};
const DEMO_SPEC: FlagSpec = { out: 'string', persons: 'number', seed: 'number', 'no-experiment': 'boolean' };

type Command = (argv: string[]) => Promise<void>;

/** The demo's closing external validation: tiny models and few epochs (about a minute on two cores); numbers are illustrative. */
async function demoExperiment(out: string): Promise<void> {
  consoleLogger.info('demo: small external-validation experiment (site A -> site B)');
  const r = await experimentExternal({
    out: path.join(out, 'experiment'), personsA: 1000, personsB: 400, tasks: ['mortality', 'long_stay'], seeds: [1],
    epochs: 3, textEpochs: 2, gclEpochs: 3, valSplits: ['pretrain_val'], testSplits: ['finetune_val', 'finetune_test'],
    force: true, log: { info: () => undefined, warn: consoleLogger.warn },
  });
  process.stdout.write(`\nexternal validation (train at synthetic site A, test at A and at site B; tiny models, 1 seed):\n${r.table}\n`);
  const report = path.join(out, 'experiment', 'report.html');
  if (fs.existsSync(report)) consoleLogger.info(`report: ${report}`);
}

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
    const p = parseArgs(argv, RUN_SPEC, 'medrep run');
    const meds = p.flags.meds as string | undefined;
    if ((meds === undefined) === (p.flags.omop === undefined)) {
      throw new UserError(`medrep run: ${meds === undefined ? '--omop DIR (or --meds DIR) is required' : 'give --omop DIR or --meds DIR, not both'}`);
    }
    const summary = await runLocal({
      ...(meds !== undefined ? { medsInput: requireFlag(p, 'meds', 'medrep run') } : { omop: requireFlag(p, 'omop', 'medrep run') }),
      vocab: p.flags.vocab as string | undefined,
      out: requireFlag(p, 'out', 'medrep run'),
      maxEvents: p.flags['max-events'] as number | undefined,
      eventsPerShard: p.flags['events-per-shard'] as number | undefined,
      sequencesPerShard: p.flags['sequences-per-shard'] as number | undefined,
      memoryLimit: p.flags['memory-limit'] as string | undefined,
      meds: !p.flags['no-meds'],
      force: p.flags.force === true,
      ...taskFlags(p.flags),
      log: consoleLogger,
    });
    process.stdout.write(formatSummary(summary) + '\n');
    await reportAfterRun(summary.out, consoleLogger);
  },
  async demo(argv) {
    const p = parseArgs(argv, DEMO_SPEC, 'medrep demo');
    const out = path.resolve((p.flags.out as string | undefined) ?? path.join(os.tmpdir(), 'medrep-demo'));
    // The demo's folder holds only what the demo writes (omop/, run/, experiment/), regenerated each time.
    await withOutputDir(out, { command: 'demo', log: consoleLogger }, async () => {
      const omop = path.join(out, 'omop');
      fs.rmSync(omop, { recursive: true, force: true });
      const persons = (p.flags.persons as number | undefined) ?? 500;
      consoleLogger.info(`demo: generating a synthetic hospital of ${persons} persons in ${omop}`);
      await generateSynthetic({ persons, seed: (p.flags.seed as number | undefined) ?? 42, out: omop, format: 'parquet', site: 'A' });
      const summary = await runLocal({ omop, out: path.join(out, 'run'), log: consoleLogger, force: true });
      process.stdout.write(formatSummary(summary) + '\n');
      await reportAfterRun(summary.out, consoleLogger);
      if (!p.flags['no-experiment']) await demoExperiment(out);
    });
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
  async analyze(argv) {
    await runAnalyzeCommand(argv);
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
  async report(argv) {
    await runReportCommand(argv);
  },
  async bench(argv) {
    await runBench(argv);
  },
  async help() {
    process.stdout.write(USAGE + '\n');
  },
};

/** The synopsis line(s) of a command in USAGE (the lines from `medrep <name>` to the next command). */
function synopsis(name: string): string {
  const lines = USAGE.split('\n');
  const first = lines.findIndex((l) => l.trimStart().startsWith(`medrep ${name} `) || l.trim() === `medrep ${name}`);
  if (first < 0) return `medrep ${name}`;
  let last = first + 1;
  while (last < lines.length && lines[last].startsWith('    ') && !lines[last].trimStart().startsWith('medrep ')) last++;
  return lines.slice(first, last).map((l) => l.trim()).join('\n  ');
}

/** Options as lines of at most about 96 characters. */
function wrapOptions(spec: FlagSpec): string {
  const lines: string[] = [];
  for (const o of optionLines(spec)) {
    if (lines.length && lines[lines.length - 1].length + o.length < 92) lines[lines.length - 1] += `  ${o}`;
    else lines.push(o);
  }
  return lines.length ? lines.join('\n') : '(none)';
}
const fromSpec = (spec: FlagSpec) => () => wrapOptions(spec);
/** Every command's options, from the tables its parser reads (or its own usage text). */
const COMMAND_OPTIONS: Record<string, () => string> = {
  run: fromSpec(RUN_SPEC),
  demo: fromSpec(DEMO_SPEC),
  synth: fromSpec(SYNTH_SPEC),
  bench: fromSpec(BENCH_SPEC),
  'train representations': () => TRAIN_REPRESENTATIONS_USAGE,
  'train ehr': () => TRAIN_EHR_USAGE,
  'experiment external': fromSpec(EXPERIMENT_SPEC),
  'analyze attention': fromSpec(ANALYZE_SPEC),
  'import-representations': () => IMPORT_REPRESENTATIONS_USAGE,
  report: fromSpec(REPORT_SPEC),
  topics: fromSpec(TOPICS_SPEC),
  status: fromSpec(STATUS_SPEC),
  produce: fromSpec(PRODUCE_SPEC),
  stream: fromSpec(STREAM_SPEC),
  replay: fromSpec(REPLAY_SPEC),
};

function commandHelp(name: string): string {
  const options = COMMAND_OPTIONS[name]().split('\n').map((l) => `    ${l.trim()}`).join('\n');
  return `  ${synopsis(name)}\n  options:\n${options}`;
}

function fullHelp(): string {
  return `${USAGE}\n\nevery option of every command:\n\n${Object.keys(COMMAND_OPTIONS).map(commandHelp).join('\n\n')}`;
}

/** The help key of a command line: `train ehr`, `experiment external`, or the command itself. */
function helpKey(name: string, rest: string[]): string | null {
  const two = `${name} ${rest[0] ?? ''}`;
  if (COMMAND_OPTIONS[two]) return two;
  return COMMAND_OPTIONS[name] ? name : null;
}

export async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  const command = commands[name ?? 'help'];
  try {
    if (!command) throw new UserError(`unknown command "${name}" (medrep help lists the commands)`);
    if (name === 'help' || (name !== undefined && wantsHelp(rest))) {
      const key = name === 'help' ? null : helpKey(name, rest);
      process.stdout.write((key ? commandHelp(key) : fullHelp()) + '\n');
      return;
    }
    await command(rest);
  } catch (e) {
    const { line, exitCode } = classifyError(e);
    process.stderr.write(`medrep: ${line}\n`);
    if (process.env.MEDREP_DEBUG === '1' && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    process.exitCode = exitCode;
  }
}
