// Builds the vocabulary of the synthetic hospital from the catalogue: the CONCEPT,
// CONCEPT_RELATIONSHIP and CONCEPT_ANCESTOR rows (the same for both sites, as a full Athena
// download would be), and the codings each site uses for each clinical fact.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createHash } from 'node:crypto';
import type { Coding, Concept, EventDef, PhenotypeDef, Site } from './catalogue';
import { VocabularyBuilder, addConditions, addDrugs, addFixedConcepts, addMeasurements, addProcedures } from './vocabularySections';

/**
 * Where the generator looks for the HCUP-CCS phenotype codes when not told: ../shared/tasks/ from
 * the working directory, then from the project root (this file is dist/synth/*.js).
 */
export function defaultHcupCsv(): string | null {
  const rel = '../shared/tasks/hcup_ccs_phenotypes_icd9.csv';
  for (const candidate of [resolve(rel), resolve(__dirname, '../..', rel)]) if (existsSync(candidate)) return candidate;
  return null;
}

export interface PhenotypeCodings {
  def: PhenotypeDef;
  /** The site's own codes (most of its rows) and the other codes of the phenotype from the csv. */
  main: Record<Site, Coding[]>;
  extra: Record<Site, Coding[]>;
}

export interface LabCoding {
  key: string;
  coding: Record<Site, Coding>;
  unitConceptId: number | null;
  unitSource: string;
}

export interface SynthVocabulary {
  concepts: Map<number, Concept>;
  relationships: Array<[number, number, string]>;
  phenotypes: PhenotypeCodings[];
  phenotypeByName: Map<string, PhenotypeCodings>;
  otherConditions: Map<string, Record<Site, Coding>>;
  events: Map<EventDef['key'], Record<Site, Coding>>;
  drugs: Map<string, Record<Site, Coding[]>>;
  labs: Map<string, LabCoding>;
  valueless: Map<string, Coding>;
  procedures: Map<string, Record<Site, Coding>>;
  /** 'csv:<sha256>' when the HCUP csv was read, 'builtin' otherwise. */
  icd9Source: string;
}

const REVERSE: Record<string, string> = {
  'Maps to': 'Mapped from',
  'Is a': 'Subsumes',
  'RxNorm has ing': 'RxNorm ing of',
  'Tradename of': 'Has tradename',
};

/** Relationships that make the hierarchy from which CONCEPT_ANCESTOR is derived (child -> parent). */
const HIERARCHICAL = new Set(['Is a', 'RxNorm has ing', 'Tradename of']);

/** Phenotype name -> ICD-9 codes (dots removed), or null when the csv is absent. */
export function readHcupCsv(path: string): { codes: Map<string, string[]>; sha256: string } {
  if (!existsSync(path)) throw new Error(`synth: HCUP phenotype csv not found: ${path}`);
  const text = readFileSync(path, 'utf8');
  const codes = new Map<string, string[]>();
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  for (let i = 1; i < lines.length; i++) {
    // Phenotype names contain ';' but no ','; the last two fields are the CCS number and the codes.
    const parts = lines[i].split(',');
    if (parts.length < 3) throw new Error(`${path}: line ${i + 1}: expected Phenotype,CCS,ICD9`);
    const list = parts[parts.length - 1].trim().split(/\s+/).filter(Boolean);
    codes.set(parts.slice(0, parts.length - 2).join(','), list);
  }
  return { codes, sha256: createHash('sha256').update(text).digest('hex') };
}

/** `hcupCsvPath` null: the built-in codes only; a path that does not exist: an error. */
export function buildVocabulary(hcupCsvPath: string | null = defaultHcupCsv()): SynthVocabulary {
  const builder = new VocabularyBuilder();
  const csv = hcupCsvPath ? readHcupCsv(hcupCsvPath) : null;
  addFixedConcepts(builder);
  const { phenotypes, otherConditions, events } = addConditions(builder, csv, hcupCsvPath);
  const drugs = addDrugs(builder);
  const { labs, valueless } = addMeasurements(builder);
  const procedures = addProcedures(builder);
  const reg = builder.reg;
  // Standard concepts map to themselves, as in Athena.
  for (const c of reg.concepts.values()) if (c.standard === 'S') reg.relate(c.id, c.id, 'Maps to');
  return {
    concepts: reg.concepts,
    relationships: reg.relationships,
    phenotypes,
    phenotypeByName: new Map(phenotypes.map((p) => [p.def.name, p])),
    otherConditions,
    events,
    drugs,
    labs,
    valueless,
    procedures,
    icd9Source: csv ? `csv:${csv.sha256}` : 'builtin',
  };
}

/** CONCEPT rows sorted by id. */
export function conceptRows(v: SynthVocabulary): Concept[] {
  return [...v.concepts.values()].sort((a, b) => a.id - b.id);
}

/** CONCEPT_RELATIONSHIP rows with their reverse relationships, deduplicated and sorted. */
export function relationshipRows(v: SynthVocabulary): Array<[number, number, string]> {
  const seen = new Set<string>();
  const out: Array<[number, number, string]> = [];
  const push = (a: number, b: number, r: string) => {
    const k = `${a}|${b}|${r}`;
    if (seen.has(k)) return;
    seen.add(k);
    out.push([a, b, r]);
  };
  for (const [a, b, r] of v.relationships) {
    push(a, b, r);
    if (a !== b) push(b, a, REVERSE[r] ?? r);
  }
  return out.sort((x, y) => x[0] - y[0] || x[1] - y[1] || (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0));
}

/**
 * CONCEPT_ANCESTOR rows: the transitive closure of the hierarchy ("Is a", and for drugs
 * "RxNorm has ing" and "Tradename of"), with the shortest and longest path length, and a row of
 * level 0 for each standard concept with itself, as Athena has.
 */
export function ancestorRows(v: SynthVocabulary): Array<[number, number, number, number]> {
  const parents = new Map<number, Set<number>>();
  for (const [a, b, r] of v.relationships) {
    if (!HIERARCHICAL.has(r) || a === b) continue;
    let s = parents.get(a);
    if (!s) parents.set(a, (s = new Set()));
    s.add(b);
  }
  const memo = new Map<number, Map<number, [number, number]>>();
  const visiting = new Set<number>();
  const up = (id: number): Map<number, [number, number]> => {
    const cached = memo.get(id);
    if (cached) return cached;
    if (visiting.has(id)) throw new Error(`synthetic vocabulary: hierarchy cycle at concept ${id}`);
    visiting.add(id);
    const result = new Map<number, [number, number]>();
    for (const p of parents.get(id) ?? []) {
      const add = (anc: number, min: number, max: number) => {
        const cur = result.get(anc);
        result.set(anc, cur ? [Math.min(cur[0], min), Math.max(cur[1], max)] : [min, max]);
      };
      add(p, 1, 1);
      for (const [anc, [mn, mx]] of up(p)) add(anc, mn + 1, mx + 1);
    }
    visiting.delete(id);
    memo.set(id, result);
    return result;
  };
  const rows: Array<[number, number, number, number]> = [];
  for (const c of v.concepts.values()) {
    if (c.standard !== 'S' && c.standard !== 'C') continue;
    rows.push([c.id, c.id, 0, 0]);
    for (const [anc, [mn, mx]] of up(c.id)) rows.push([anc, c.id, mn, mx]);
  }
  return rows.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}
