// `medrep train representations`: concept vectors from the vocabulary (and the run's deciles).
import { UserError } from '../common/errors';
import { withOutputDir } from '../common/outputDir';
import { trainRepresentations, TrainRepresentationsOptions } from '../trainers/representations/trainRepresentations';
import { defineCommand } from './command';
import { Options, parseOptions } from './options';
import { BACKEND_OPTION } from './trainerOptions';
import { GRACE_SIZE_NAMES, TEXT_ENCODER_SIZE_NAMES } from '../trainers/representations/sizes';

const NAME = 'train representations';

const OPTIONS = {
  vocab: { type: 'string', value: 'DIR', required: true, help: 'OMOP vocabulary folder (Athena export)' },
  out: { type: 'string', value: 'OUT', required: true, help: 'output folder of the representation tables' },
  deciles: { type: 'string', value: 'FILE', help: "a run's decile artifact: measurement concepts get a row per decile" },
  descriptions: { type: 'string', value: 'FILE', help: 'concept descriptions (CSV concept_id,description) added to the text' },
  endpoint: { type: 'string', value: 'URL', help: 'an OpenAI-compatible chat endpoint that writes descriptions (API key from MEDREP_ENDPOINT_API_KEY)' },
  'endpoint-model': { type: 'string', value: 'NAME', help: "the endpoint's model" },
  method: { type: 'enum', values: ['lexical', 'paper', 'medtok'], help: 'lexical: TF-IDF+SVD text, APPNP on the graph (default); paper: MLM + GCL with KD; medtok: the MedTok baseline' },
  text: { type: 'enum', values: ['mlm', 'lexical'], help: "the text stage (overrides the method's)" },
  pooling: { type: 'enum', values: ['cls', 'mean'], help: 'pooling of the MLM text vectors' },
  graph: { type: 'enum', values: ['grace', 'appnp', 'medtok', 'none'], help: "the graph stage (overrides the method's)" },
  'codebook-size': { type: 'int', above: 0, help: 'MedTok codebook size' },
  'codes-per-modality': { type: 'int', above: 0, help: 'MedTok codes per concept and modality' },
  'decile-rows': { type: 'enum', values: ['ordinal', 'nodes'], help: 'decile rows as ordinal offsets or as graph nodes' },
  dim: { type: 'int', above: 0, help: 'dimension of the lexical vectors' },
  alpha: { type: 'number', above: 0, help: 'APPNP teleport probability, in (0, 1]' },
  'ordinal-weight': { type: 'number', above: 0, help: 'weight of the ordinal decile offset' },
  ...BACKEND_OPTION,
  epochs: { type: 'int', above: 0, help: 'graph epochs at most (and text epochs without --text-epochs)' },
  'text-epochs': { type: 'int', above: 0, help: 'text MLM epochs at most' },
  patience: { type: 'int', above: 0, help: 'epochs without improvement before stopping' },
  'text-size': { type: 'enum', values: TEXT_ENCODER_SIZE_NAMES, help: "size of the text encoder: small (default) or the paper's (hidden 768, 6 layers)" },
  'graph-size': { type: 'enum', values: GRACE_SIZE_NAMES, help: 'size of GRACE mini-batches: full (default; 1024 seeds, 30/20/10 neighbours) or small (256 seeds, 10/5)' },
  hidden: { type: 'int', above: 0, help: 'hidden size of the text encoder' },
  'seeds-per-batch': { type: 'int', above: 0, help: 'GRACE seed nodes per batch' },
  'no-kd': { type: 'bool', help: 'GRACE without distillation from the text vectors' },
  'also-no-kd': { type: 'bool', help: 'also write medrep-no-kd.parquet (GRACE without distillation)' },
  seed: { type: 'int', above: 0, help: 'random seed' },
} as const;

/** The object without its undefined fields (an option not given sets nothing). */
function given<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
/** `given(o)`, or undefined when nothing was given. */
const some = <T extends object>(o: T): Partial<T> | undefined => (Object.keys(given(o)).length ? given(o) : undefined);

/** The trainer's options of the command's options. */
export function trainRepresentationsOptions(o: Options<typeof OPTIONS>, env: NodeJS.ProcessEnv = process.env): TrainRepresentationsOptions {
  if (o.alpha !== undefined && o.alpha > 1) throw new UserError(`medrep ${NAME}: --alpha must be in (0, 1], got ${o.alpha}`);
  return {
    ...given({
      vocab: o.vocab, out: o.out, deciles: o.deciles, descriptions: o.descriptions, endpoint: o.endpoint, endpointModel: o.endpointModel,
      backend: o.backend, textSize: o.textSize, graphSize: o.graphSize, alsoNoKd: o.alsoNoKd || undefined, method: o.method, ordinalWeight: o.ordinalWeight, seed: o.seed,
      textConfig: some({ hidden: o.hidden }), medtok: some({ codebookSize: o.codebookSize, codesPerModality: o.codesPerModality }),
      lexical: some({ dim: o.dim }), propagation: some({ alpha: o.alpha }), endpointApiKey: env.MEDREP_ENDPOINT_API_KEY || undefined,
    }),
    vocab: o.vocab,
    out: o.out,
    mlm: given({ maxEpochs: o.textEpochs ?? o.epochs, patience: o.patience }),
    gcl: given({ maxEpochs: o.epochs, patience: o.patience, seedsPerBatch: o.seedsPerBatch, distill: o.noKd ? false : undefined }),
    settings: given({ text: o.text, pooling: o.pooling, graph: o.graph, deciles: o.decileRows }),
  };
}

/** The trainer's options of a command line (the words after `train representations`). */
export const parseTrainRepresentationsArgs = (argv: readonly string[]): TrainRepresentationsOptions =>
  trainRepresentationsOptions(parseOptions(`medrep ${NAME}`, OPTIONS, argv).options);

export const trainRepresentationsCommand = defineCommand({
  name: NAME,
  synopsis: '--vocab DIR --out OUT [--deciles FILE] [--descriptions FILE] [--method lexical|paper|medtok]',
  summary: 'concept vectors (default: TF-IDF+SVD text, APPNP on the graph; paper: MLM + GCL with KD; medtok: the MedTok baseline)',
  options: OPTIONS,
  async run(o) {
    const t = trainRepresentationsOptions(o);
    await withOutputDir(t.out, { command: NAME }, () => trainRepresentations(t));
  },
});
