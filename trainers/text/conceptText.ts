// Concept text: one description per graph node. Sources, in order: a user-supplied descriptions
// file (concept_id, description[, decile]); an OpenAI-compatible chat endpoint; a description
// composed from the vocabulary (name, synonyms, domain, vocabulary, class, every ancestor's name
// nearest first, the names of the source codes that map to it, and related concepts' names such
// as ingredients and dose forms). Decile rows say what the decile is ("decile 9 of 10, high, 8.0
// to 9.0 %" where the boundaries are known) before their concept's description. The source of
// every description is recorded.
import * as fs from 'fs';
import type { ConceptGraph } from '../graph/conceptGraph';
import { DOMAIN_NAMES } from '../graph/conceptGraph';
import type { DecileArtifact } from '../../transforms/deciles';
import { parseId, requireVocabFile, streamAncestors, streamConcepts, streamRelationships, streamSynonyms, streamVocabTable } from '../../sources/vocabularyFiles';
import { InMemoryVocabularyIndex } from '../representations/lookup';
import { ChatDescriber, ChatClientOptions, ConceptDomain, DescriptionRequest } from './chatClient';

export type TextSource = 'file' | 'endpoint' | 'template';

export interface ConceptText {
  /** Per graph node. */
  texts: string[];
  sources: TextSource[];
  counts: Record<TextSource, number>;
}

interface ConceptInfo { name: string; vocabulary: string; cls: string }

export function ordinal(k: number): string {
  const s = k % 100 >= 11 && k % 100 <= 13 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[k % 10] ?? 'th';
  return `${k}${s}`;
}

/** Reads a descriptions file: CSV or TSV with columns concept_id, description and optionally decile. */
export async function readDescriptionsFile(file: string): Promise<Map<string, string>> {
  if (!fs.existsSync(file)) throw new Error(`descriptions file ${file} does not exist`);
  const header = fs.readFileSync(file, 'utf8').split('\n', 1)[0].toLowerCase();
  const format = header.includes('\t') ? 'tsv' : 'csv';
  const withDecile = /(^|[,\t])decile([,\t]|$)/.test(header.trim());
  const out = new Map<string, string>();
  await streamVocabTable({ path: file, format }, withDecile ? ['concept_id', 'description', 'decile'] : ['concept_id', 'description'], (r, where) => {
    const id = parseId(r.concept_id, where, 'concept_id');
    if (r.description === null) throw new Error(`${where}: column description is empty`);
    const d = withDecile && r.decile !== null ? Number(r.decile) : null;
    if (d !== null && !(Number.isInteger(d) && d >= 0 && d <= 9)) throw new Error(`${where}: column decile is not 0..9: '${r.decile}'`);
    out.set(textKey(id, d), r.description);
  });
  return out;
}

export function textKey(conceptId: number, decile: number | null): string {
  return decile === null || decile < 0 ? `${conceptId}` : `${conceptId}#${decile}`;
}

/**
 * Offline description of a concept from its vocabulary entry and neighbourhood: ancestors
 * nearest first, then the names of source codes recorded as it ("Mapped from"), then other
 * related concepts (ingredient, dose form, brand, unit ...).
 */
export function templateDescription(info: ConceptInfo, domain: string, synonyms: string[], ancestors: string[], related: Array<[string, string]>, recordedAs: string[] = []): string {
  const parts = [`${info.name}.`, `A ${domain} concept in ${info.vocabulary}${info.cls ? ` (${info.cls})` : ''}.`];
  if (synonyms.length) parts.push(`Also known as ${synonyms.join('; ')}.`);
  if (ancestors.length) parts.push(`A kind of ${ancestors.join('; ')}.`);
  if (recordedAs.length) parts.push(`Recorded as ${recordedAs.join('; ')}.`);
  if (related.length) parts.push(...related.map(([rel, name]) => `${rel}: ${name}.`));
  return parts.join(' ');
}

/** Where decile k (0-based) lies in the distribution, in words. */
export function decileBand(k: number): string {
  return k === 0 ? 'lowest' : k <= 2 ? 'low' : k <= 6 ? 'middle' : k <= 8 ? 'high' : 'highest';
}

function formatBound(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(4)));
}

/** "decile 9 of 10, high, 8 to 9 %" (the value range where the boundaries are known). */
export function decileDescription(k: number, boundaries?: readonly number[] | null, unit?: string | null): string {
  const range = boundaries && boundaries.length === 11 ? `, ${formatBound(boundaries[k])} to ${formatBound(boundaries[k + 1])}${unit ? ` ${unit}` : ''}` : '';
  return `decile ${k + 1} of 10, ${decileBand(k)}${range}`;
}

/** Relationships whose target's name says what a concept is (not its children, not itself). */
const NOT_DESCRIPTIVE = new Set(['Maps to', 'Mapped from', 'Is a', 'Subsumes']);

export interface ConceptTextOptions {
  descriptionsFile?: string | null;
  endpoint?: (Partial<ChatClientOptions> & Pick<ChatClientOptions, 'endpoint' | 'cacheFile'>) | null;
  /** Related names per concept in a template. */
  maxRelated?: number;
  /** Ancestor names per concept in a template (nearest first). Default 12. */
  maxAncestors?: number;
  /** Decile boundaries: decile descriptions name their value range. */
  deciles?: DecileArtifact | null;
  log?: (line: string) => void;
}

/**
 * What the descriptions say about the concepts in scope, read from the vocabulary folder: every
 * concept's name (related concepts may lie outside the scope), up to 3 synonyms, "Is a" and
 * ancestor rows, up to maxRelated descriptive relationships and up to 3 source codes mapped from.
 */
async function readConceptFacts(vocabDir: string, inScope: Set<number>, maxRelated: number) {
  const info = new Map<number, ConceptInfo>();
  await streamConcepts(vocabDir, (c) => info.set(c.concept_id, { name: c.concept_name, vocabulary: c.vocabulary_id, cls: c.concept_class_id }));
  const synonyms = new Map<number, string[]>();
  await streamSynonyms(vocabDir, (id, s) => {
    if (!inScope.has(id)) return;
    const l = synonyms.get(id) ?? [];
    const name = info.get(id)?.name;
    if (l.length < 3 && s !== name && !l.includes(s)) l.push(s);
    synonyms.set(id, l);
  });
  const isA: Array<[number, number]> = [];
  const ancestorRows: Array<[number, number, number]> = [];
  const related = new Map<number, Array<[string, number]>>();
  const recordedAs = new Map<number, number[]>();
  requireVocabFile(vocabDir, 'concept_relationship');
  await streamRelationships(vocabDir, (a, b, rel) => {
    if (a === b || !info.has(b)) return;
    if (rel === 'Is a') isA.push([a, b]);
    if (!inScope.has(a)) return;
    if (rel === 'Mapped from') {
      const l = recordedAs.get(a) ?? [];
      if (l.length < 3 && !l.includes(b)) l.push(b);
      recordedAs.set(a, l);
    } else if (!NOT_DESCRIPTIVE.has(rel)) {
      const l = related.get(a) ?? [];
      if (l.length < maxRelated && !l.some(([, x]) => x === b)) l.push([rel, b]);
      related.set(a, l);
    }
  });
  await streamAncestors(vocabDir, (anc, desc, lvl) => { if (inScope.has(desc) && lvl > 0 && info.has(anc)) ancestorRows.push([anc, desc, lvl]); });
  return { info, synonyms, isA, ancestorRows, related, recordedAs };
}

/** Builds the description of every node of the graph. */
export async function buildConceptText(vocabDir: string, graph: ConceptGraph, o: ConceptTextOptions = {}): Promise<ConceptText> {
  const log = o.log ?? (() => {});
  const maxRelated = o.maxRelated ?? 6;
  const inScope = new Set<number>();
  for (let n = 0; n < graph.numConceptNodes; n++) inScope.add(graph.conceptIds[n]);

  const maxAncestors = o.maxAncestors ?? 12;
  const { info, synonyms, isA, ancestorRows, related, recordedAs } = await readConceptFacts(vocabDir, inScope, maxRelated);
  const hierarchy = new InMemoryVocabularyIndex({ mapsTo: [], isA, ancestors: ancestorRows });
  const ancestorNames = (id: number): string[] => hierarchy.ancestors(id).slice(0, maxAncestors).map((p) => info.get(p)!.name);
  const boundaries = new Map<number, { b: number[]; unit: string | null; count: number }>();
  for (const g of o.deciles?.groups ?? []) {
    const prev = boundaries.get(g.concept_id);
    if (!prev || g.count > prev.count) boundaries.set(g.concept_id, { b: g.boundaries, unit: g.unit, count: g.count });
  }

  const base = new Map<number, { text: string; source: TextSource }>();
  const fileTexts = o.descriptionsFile ? await readDescriptionsFile(o.descriptionsFile) : new Map<string, string>();
  const requests: DescriptionRequest[] = [];
  for (let n = 0; n < graph.numConceptNodes; n++) {
    const id = graph.conceptIds[n];
    const t = fileTexts.get(textKey(id, null));
    if (t !== undefined) base.set(id, { text: t, source: 'file' });
    else if (o.endpoint) {
      const i = info.get(id)!;
      requests.push({ key: textKey(id, null), domain: DOMAIN_NAMES[graph.domains[n]] as ConceptDomain, name: i.name, vocabulary: i.vocabulary });
    }
  }
  if (o.endpoint && requests.length) {
    const answers = await new ChatDescriber({ ...o.endpoint, log }).describeAll(requests);
    for (const r of requests) {
      const a = answers.get(r.key);
      if (a) base.set(Number(r.key), { text: a, source: 'endpoint' });
    }
  }
  for (let n = 0; n < graph.numConceptNodes; n++) {
    const id = graph.conceptIds[n];
    if (base.has(id)) continue;
    const i = info.get(id)!;
    base.set(id, {
      text: templateDescription(i, DOMAIN_NAMES[graph.domains[n]], synonyms.get(id) ?? [], ancestorNames(id),
        (related.get(id) ?? []).map(([rel, b]) => [rel, info.get(b)!.name] as [string, string]),
        (recordedAs.get(id) ?? []).map((c) => info.get(c)!.name)),
      source: 'template',
    });
  }

  const texts: string[] = [];
  const sources: TextSource[] = [];
  const counts: Record<TextSource, number> = { file: 0, endpoint: 0, template: 0 };
  for (let n = 0; n < graph.numNodes; n++) {
    const id = graph.conceptIds[n];
    const d = graph.deciles[n];
    let text: string;
    let source: TextSource;
    const own = d >= 0 ? fileTexts.get(textKey(id, d)) : undefined;
    if (own !== undefined) { text = own; source = 'file'; } else if (d >= 0) {
      const b = base.get(id)!;
      const range = boundaries.get(id);
      text = `${info.get(id)!.name}, ${decileDescription(d, range?.b, range?.unit)}. ${b.text}`;
      source = b.source;
    } else ({ text, source } = base.get(id)!);
    texts.push(text);
    sources.push(source);
    counts[source]++;
  }
  log(`[text] ${graph.numNodes} descriptions: ${counts.file} from file, ${counts.endpoint} from endpoint, ${counts.template} from templates`);
  return { texts, sources, counts };
}
