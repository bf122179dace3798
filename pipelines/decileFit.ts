// First pass of a run: fits decile boundaries on the training persons' numeric measurements,
// after normalization, so boundaries belong to standard concepts.
import { DuckDBConnection } from '@duckdb/node-api';
import { DecileArtifact, DecileFitter } from '../transforms/deciles';
import { ConceptNormalizer } from '../transforms/normalize';
import { UnitNamer } from '../transforms/events';
import { Split } from '../transforms/splits';
import { numericColumn, streamChunks, stringColumn } from './duck';

/** Splits whose values fit the boundaries (DESIGN.md: the training split only). */
export const FIT_SPLITS = new Set<Split>(['pretrain_train', 'finetune_train']);

export async function fitDeciles(
  conn: DuckDBConnection,
  normalizer: ConceptNormalizer,
  units: UnitNamer,
  splitOfPerson: (personId: number) => Split | null,
): Promise<{ artifact: DecileArtifact; valuesSeen: number; valuesUsed: number }> {
  const fitter = new DecileFitter();
  let valuesSeen = 0;
  let valuesUsed = 0;
  const sql = `SELECT CAST(person_id AS DOUBLE), CAST(measurement_concept_id AS DOUBLE),
      CAST(coalesce(measurement_source_concept_id, 0) AS DOUBLE), CAST(coalesce(unit_concept_id, 0) AS DOUBLE),
      unit_source_value, value_as_number
    FROM measurement WHERE value_as_number IS NOT NULL`;
  for await (const chunk of streamChunks(conn, sql)) {
    const person = numericColumn(chunk, 0).values;
    const concept = numericColumn(chunk, 1).values;
    const source = numericColumn(chunk, 2).values;
    const unitConcept = numericColumn(chunk, 3).values;
    const unitSource = stringColumn(chunk, 4);
    const value = numericColumn(chunk, 5).values;
    for (let i = 0; i < chunk.rowCount; i++) {
      valuesSeen++;
      const split = splitOfPerson(person[i]);
      if (split === null || !FIT_SPLITS.has(split)) continue;
      const n = normalizer.normalize(concept[i], source[i]);
      fitter.add(n.conceptId, units(unitConcept[i], unitSource(i)), value[i]);
      valuesUsed++;
    }
  }
  return { artifact: fitter.fit(undefined, [...FIT_SPLITS].join('+')), valuesSeen, valuesUsed };
}
