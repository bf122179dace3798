-- Concept sets of the shipped tasks, from the lists in {{TASKS_DIR}} and the vocabulary views.
CREATE OR REPLACE TABLE ref_concept_set (task VARCHAR, set_idx INTEGER, set_name VARCHAR, concept_id BIGINT);

-- Phenotypes: ICD9CM concepts whose code without dots is listed, their valid "Maps to" targets,
-- and every descendant of both.
CREATE OR REPLACE TABLE ref_icd9_code AS
WITH f AS (
  SELECT (row_number() OVER () - 1)::INTEGER AS set_idx, "Phenotype" AS set_name, "ICD9" AS codes
  FROM read_csv('{{TASKS_DIR}}/hcup_ccs_phenotypes_icd9.csv', header = true, all_varchar = true))
SELECT set_idx, set_name, code FROM (SELECT set_idx, set_name, unnest(string_split(codes, ' ')) AS code FROM f) WHERE code <> '';

INSERT INTO ref_concept_set
WITH src AS (
  SELECT k.set_idx, k.set_name, c.concept_id
  FROM ref_icd9_code k JOIN concept c ON c.vocabulary_id = 'ICD9CM' AND replace(c.concept_code, '.', '') = k.code),
roots AS (
  SELECT set_idx, set_name, concept_id FROM src
  UNION
  SELECT src.set_idx, src.set_name, r.concept_id_2
  FROM src JOIN concept_relationship r ON r.concept_id_1 = src.concept_id
  WHERE r.relationship_id = 'Maps to' AND coalesce(r.invalid_reason, '') = '')
SELECT DISTINCT 'phenotypes', set_idx, set_name, concept_id FROM (
  SELECT set_idx, set_name, concept_id FROM roots
  UNION
  SELECT roots.set_idx, roots.set_name, a.descendant_concept_id
  FROM roots JOIN concept_ancestor a ON a.ancestor_concept_id = roots.concept_id);

-- The four listed in-hospital events.
INSERT INTO ref_concept_set SELECT 'uti', 0, 'UTI', unnest("UTI") FROM read_json_auto('{{TASKS_DIR}}/in_hospital_event_concepts.json');
INSERT INTO ref_concept_set SELECT 'sepsis', 0, 'Sepsis', unnest("Sepsis") FROM read_json_auto('{{TASKS_DIR}}/in_hospital_event_concepts.json');
INSERT INTO ref_concept_set SELECT 'pneumonia', 0, 'PNA', unnest("PNA") FROM read_json_auto('{{TASKS_DIR}}/in_hospital_event_concepts.json');
INSERT INTO ref_concept_set SELECT 'mi', 0, 'MI', unnest("MI") FROM read_json_auto('{{TASKS_DIR}}/in_hospital_event_concepts.json');

-- Fracture: SNOMED condition concepts whose lower-cased name matches closed.*fracture.
INSERT INTO ref_concept_set
SELECT DISTINCT 'fracture', 0, 'Fx', concept_id FROM concept
WHERE vocabulary_id = 'SNOMED' AND domain_id = 'Condition' AND regexp_matches(lower(concept_name), 'closed.*fracture');
